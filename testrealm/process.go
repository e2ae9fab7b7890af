package testrealm

import (
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// FreePort returns a loopback TCP port that was free a moment ago, for a server a
// test starts as a separate process.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// GoBuild builds the Go command in pkg (a directory, relative to the test's package)
// into the test's temporary directory and returns the binary's path.
func GoBuild(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(filepath.Clean(pkg)))
	if filepath.Clean(pkg) == "." {
		bin = filepath.Join(filepath.Dir(bin), "cmd")
	}
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}
