package testrealm

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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

// daemon is a server a test runs as a separate process (Apache, nginx, caddy).
type daemon struct {
	name string    // for messages, "nginx"
	cmd  *exec.Cmd // not started yet
	// output is the file that takes stdout and stderr: a file, not a pipe, since
	// the server's children inherit it and a pipe would keep Wait waiting for them.
	output string
	port   int // the server is up when this loopback port accepts
	// stop is sent to the server's own pid first (a graceful stop); after 5 s, or
	// at once when it is 0, its whole process group is killed.
	stop syscall.Signal
	// logs is what is shown when the server fails or the test does.
	logs func() string
}

// startDaemon starts d in a process group of its own, stops it when the test ends
// (showing its logs if the test failed) and returns once its port accepts; it
// fails the test if the server exits first or is not listening within 15 s.
func startDaemon(t testing.TB, d daemon) {
	t.Helper()
	out, err := os.Create(d.output)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	d.cmd.Stdout, d.cmd.Stderr = out, out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("testrealm: %s: %v", d.name, err)
	}
	pid := d.cmd.Process.Pid
	exited := make(chan struct{})
	go func() { d.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		if d.stop != 0 {
			syscall.Kill(pid, d.stop)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
			}
		}
		syscall.Kill(-pid, syscall.SIGKILL) // whatever of the group is left
		<-exited
		if t.Failed() {
			t.Logf("%s logs:\n%s", d.name, d.logs())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", d.port))
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("testrealm: %s exited:\n%s", d.name, d.logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testrealm: %s did not listen on %d:\n%s", d.name, d.port, d.logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
