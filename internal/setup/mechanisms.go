package setup

// This file translates the sections of the mechanisms (keys, acceptor, store,
// cookie keys, directory, TLS, Extended Protection, start-up check, operator
// endpoints); faces.go translates the faces'.

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/kerbgate/kerbgate/internal/config"
	"github.com/kerbgate/kerbgate/internal/directory"
	"github.com/kerbgate/kerbgate/internal/epa"
	"github.com/kerbgate/kerbgate/internal/krb/acceptor"
	"github.com/kerbgate/kerbgate/internal/krb/keyring"
	"github.com/kerbgate/kerbgate/internal/krb/replay"
	"github.com/kerbgate/kerbgate/internal/spncheck"
	"github.com/kerbgate/kerbgate/internal/store"
)

// Keys returns the keytab watcher of the kerberos section (its Set and OnError
// hooks left to the caller) and how often to look for changed keytabs (0: never).
func Keys(cfg *config.Config, now func() time.Time) (w *keyring.Watcher, reloadInterval time.Duration) {
	return &keyring.Watcher{Paths: cfg.Kerberos.Keytabs, Retain: cfg.Kerberos.RetainOldKeys, Now: now},
		cfg.Kerberos.KeytabReloadInterval
}

// Acceptor returns the acceptor's configuration: the accepted SPNs, realm and
// trusted realms (kerberos.trusted_realms), enctypes and clock skew.
func Acceptor(cfg *config.Config, kr *keyring.Keyring, rc replay.Cache, now func() time.Time) acceptor.Config {
	return acceptor.Config{
		Keyring:       kr,
		SPNs:          cfg.Kerberos.SPNs,
		Realm:         cfg.Kerberos.Realm,
		TrustedRealms: cfg.Kerberos.TrustedRealms,
		Enctypes:      cfg.Kerberos.Enctypes,
		ClockSkew:     cfg.Kerberos.ClockSkew,
		Replay:        rc,
		Now:           now,
	}
}

// Store returns the store section as store.Options: the embedded file, or Redis with
// its password (read from password_file or password_env) and TLS. Log and Now are
// the caller's.
func Store(cfg *config.Config) (store.Options, error) {
	o := store.Options{Path: cfg.Store.Path, ReplayCacheSize: cfg.Kerberos.ReplayCacheSize}
	rc := cfg.Store.Redis
	if rc == nil {
		return o, nil
	}
	pw, err := rc.Password()
	if err != nil {
		return store.Options{}, err
	}
	ro := &store.RedisOptions{
		Addrs: rc.Addrs, MasterName: rc.MasterName, Username: rc.Username, Password: pw, DB: rc.DB,
		Prefix: rc.Prefix, DialTimeout: rc.DialTimeout, Timeout: rc.Timeout,
		MinReplicaAcks: rc.MinReplicaAcks, ReplicaAckTimeout: rc.ReplicaAckTimeout,
		// Replay entries and tombstones outlive their expiry by the clock skew, so
		// that a node whose clock lags still finds them.
		Grace: cfg.Kerberos.ClockSkew,
	}
	if rc.TLS {
		if ro.TLS, err = store.RedisTLSConfig(rc.CAFile, rc.CertFile, rc.KeyFile, rc.ServerName); err != nil {
			return store.Options{}, fmt.Errorf("store.redis.tls: %w", err)
		}
	}
	o.Path, o.Redis = "", ro
	return o, nil
}

// CookieKeys returns the cookie key file: store.cookie_keys_file, or the file kept
// next to the embedded store, which create says may be made on first start.
func CookieKeys(cfg *config.Config) (path string, create bool, err error) {
	if cfg.Store.CookieKeysFile != "" {
		return cfg.Store.CookieKeysFile, false, nil
	}
	if cfg.Store.Path == "" {
		return "", false, errors.New("store.cookie_keys_file is required with store.redis: every node must share the session cookies' keys")
	}
	return filepath.Join(filepath.Dir(cfg.Store.Path), "kerbgate-cookie.keys"), true, nil
}

// Directory returns the directory section as directory.Config, with the simple
// bind's password read from its file or variable; ok is false without a directory
// section.
func Directory(cfg *config.Config) (dc directory.Config, ok bool, err error) {
	if !cfg.Directory.Enabled {
		return directory.Config{}, false, nil
	}
	dc = directory.Config{
		URL:              cfg.Directory.URL,
		StartTLS:         cfg.Directory.StartTLS,
		CACertFile:       cfg.Directory.CAFile,
		ServerName:       cfg.Directory.ServerName,
		LegacyCommonName: cfg.Directory.LegacyCommonName,
		BaseDN:           cfg.Directory.BaseDN,
		BindMethod:       cfg.Directory.BindMethod,
		BindDN:           cfg.Directory.BindDN,
		Keytab:           cfg.Directory.Keytab,
		Principal:        cfg.Directory.Principal,
		Realm:            cfg.Kerberos.Realm,
		Timeout:          cfg.Directory.Timeout,
		CacheTTL:         cfg.Directory.CacheTTL,
	}
	if cfg.Directory.BindMethod == "simple" {
		pw, err := cfg.Directory.Password()
		if err != nil {
			return directory.Config{}, false, fmt.Errorf("directory bind password: %w", err)
		}
		dc.BindPassword = pw
	}
	return dc, true, nil
}

// TLS is the tls section: the certificate kerbgate serves, reloaded every
// ReloadInterval.
type TLS struct {
	CertFile, KeyFile string
	ReloadInterval    time.Duration
}

// TLSFiles returns the tls section; ok is false without one.
func TLSFiles(cfg *config.Config) (t TLS, ok bool) {
	if !cfg.TLS.Enabled {
		return TLS{}, false
	}
	return TLS{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, ReloadInterval: cfg.TLS.ReloadInterval}, true
}

// EPA returns a copy of the epa section's policy.
func EPA(cfg *config.Config) (epa.Policy, error) {
	p := cfg.EPA.Policy
	if err := p.Validate(); err != nil {
		return epa.Policy{}, fmt.Errorf("epa: %w", err)
	}
	return p, nil
}

// SPNCheck returns the start-up check's options of kerberos.spn_check (the keys,
// directory and log are the caller's).
func SPNCheck(cfg *config.Config, policy epa.Policy) spncheck.Options {
	mode := spncheck.ModeWarn
	switch cfg.Kerberos.SPNCheck {
	case "fail":
		mode = spncheck.ModeFail
	case "off":
		mode = spncheck.ModeOff
	}
	o := spncheck.Options{Realm: cfg.Kerberos.Realm, SPNs: cfg.Kerberos.SPNs, EPA: policy, Mode: mode}
	if cfg.Directory.Enabled {
		o.DirectoryCAFile = cfg.Directory.CAFile
	}
	return o
}

// DebugTokenFile is log.debug_token_file, the bearer token of /debug/last-failures.
func DebugTokenFile(cfg *config.Config) string { return cfg.Log.DebugTokenFile }
