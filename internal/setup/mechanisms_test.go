package setup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/spncheck"
)

func TestStore(t *testing.T) {
	cfg := &config.Config{}
	cfg.Store.Path = "/var/lib/kerbgate/kg.db"
	cfg.Kerberos.ReplayCacheSize = 1000
	o, err := Store(cfg)
	if err != nil || o.Path != cfg.Store.Path || o.Redis != nil || o.ReplayCacheSize != 1000 {
		t.Fatalf("embedded: %+v %v", o, err)
	}

	pw := filepath.Join(t.TempDir(), "redis.pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	cfg = &config.Config{}
	cfg.Kerberos.ClockSkew = 5 * time.Minute
	cfg.Store.Redis = &config.Redis{Addrs: []string{"10.0.0.1:6379"}, Username: "kerbgate", PasswordFile: pw, Prefix: "kg:", DB: 2,
		MinReplicaAcks: 2, ReplicaAckTimeout: 300 * time.Millisecond}
	o, err = Store(cfg)
	if err != nil || o.Path != "" || o.Redis == nil {
		t.Fatalf("redis: %+v %v", o, err)
	}
	if r := o.Redis; r.Password != "s3cret" || r.Username != "kerbgate" || r.Prefix != "kg:" || r.DB != 2 || r.Grace != 5*time.Minute || r.TLS != nil ||
		r.MinReplicaAcks != 2 || r.ReplicaAckTimeout != 300*time.Millisecond {
		t.Errorf("redis options %+v", r)
	}
	cfg.Store.Redis.TLS, cfg.Store.Redis.CAFile = true, filepath.Join(t.TempDir(), "missing.pem")
	if _, err := Store(cfg); err == nil || !strings.HasPrefix(err.Error(), "store.redis.tls: ") {
		t.Errorf("unreadable CA: %v", err)
	}
}

func TestCookieKeys(t *testing.T) {
	cfg := &config.Config{}
	cfg.Store.Path = "/var/lib/kerbgate/kg.db"
	if p, create, err := CookieKeys(cfg); err != nil || p != "/var/lib/kerbgate/kerbgate-cookie.keys" || !create {
		t.Errorf("default: %q %v %v", p, create, err)
	}
	cfg.Store.CookieKeysFile = "/etc/kerbgate/cookie.keys"
	if p, create, err := CookieKeys(cfg); err != nil || p != cfg.Store.CookieKeysFile || create {
		t.Errorf("configured: %q %v %v", p, create, err)
	}
	cfg = &config.Config{}
	cfg.Store.Redis = &config.Redis{Addrs: []string{"10.0.0.1:6379"}}
	if _, _, err := CookieKeys(cfg); err == nil || !strings.Contains(err.Error(), "store.cookie_keys_file is required") {
		t.Errorf("redis without a key file: %v", err)
	}
}

func TestDirectory(t *testing.T) {
	if _, ok, err := Directory(&config.Config{}); ok || err != nil {
		t.Fatalf("no section: %v %v", ok, err)
	}
	pw := filepath.Join(t.TempDir(), "ldap.pw")
	os.WriteFile(pw, []byte("bind-pw\n"), 0o600)
	cfg := &config.Config{}
	cfg.Kerberos.Realm = "EXAMPLE.TEST"
	cfg.Directory.Enabled, cfg.Directory.URL, cfg.Directory.BindMethod, cfg.Directory.PasswordFile = true, "ldaps://dc1.example.test", "simple", pw
	dc, ok, err := Directory(cfg)
	if err != nil || !ok || dc.URL != cfg.Directory.URL || dc.BindPassword != "bind-pw" || dc.Realm != "EXAMPLE.TEST" {
		t.Fatalf("%+v %v %v", dc, ok, err)
	}
	cfg.Directory.PasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, _, err := Directory(cfg); err == nil || !strings.HasPrefix(err.Error(), "directory bind password: ") {
		t.Errorf("missing password: %v", err)
	}
}

func TestSPNCheckMode(t *testing.T) {
	for in, want := range map[string]spncheck.Mode{"warn": spncheck.ModeWarn, "fail": spncheck.ModeFail, "off": spncheck.ModeOff} {
		cfg := &config.Config{}
		cfg.Kerberos.SPNCheck = in
		if got := SPNCheck(cfg, cfg.EPA.Policy).Mode; got != want {
			t.Errorf("%s: mode %v, want %v", in, got, want)
		}
	}
}
