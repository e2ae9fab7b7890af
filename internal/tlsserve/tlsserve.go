// Package tlsserve terminates TLS for kerbgate's listener: it loads the certificate
// and key, reloads them when the files change (new connections get the new
// certificate, open ones keep theirs), and remembers which certificate each connection
// was actually served, so that channel binding (package epa) compares a client's
// bindings with the certificate that client saw.
//
// It must not decide anything about authentication; it only reports facts of the
// connection.
package tlsserve

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kerbgate/kerbgate/internal/epa"
)

// Certificate is one loaded certificate with its channel binding.
type Certificate struct {
	TLS  *tls.Certificate
	Leaf *x509.Certificate
	// Binding is the tls-server-end-point channel binding; nil when the certificate's
	// signature algorithm has none (BindingErr says why).
	Binding    epa.Binding
	BindingErr error
	LoadedAt   time.Time
}

// Files serves the certificate in CertFile/KeyFile and reloads it on change.
type Files struct {
	certFile, keyFile string
	log               *slog.Logger
	current           atomic.Pointer[Certificate]
	history           atomic.Pointer[[]*Certificate] // every certificate served, newest first, bounded
	stamp             fileStamp                      // of the loaded pair; guarded by reloadMu
	reloadMu          sync.Mutex
	stop              chan struct{}
	done              chan struct{}
	closeOnce         sync.Once
}

type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func stampOf(certFile, keyFile string) (fileStamp, error) {
	c, err := os.Stat(certFile)
	if err != nil {
		return fileStamp{}, err
	}
	k, err := os.Stat(keyFile)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{c.ModTime(), k.ModTime(), c.Size(), k.Size()}, nil
}

// Load reads the pair and, when interval > 0, checks the files for changes every
// interval until Close.
func Load(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	st, err := stampOf(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	f.current.Store(c)
	f.history.Store(&[]*Certificate{c})
	f.stamp = st
	if interval > 0 {
		go f.watch(interval)
	} else {
		close(f.done)
	}
	return f, nil
}

func loadPair(certFile, keyFile string) (*Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parse %s: %w", certFile, err)
		}
	}
	c := &Certificate{TLS: &pair, Leaf: leaf, LoadedAt: time.Now()}
	c.Binding, c.BindingErr = epa.ServerEndPoint(leaf)
	return c, nil
}

// maxHistory bounds the certificates remembered for resumed sessions. A session
// whose certificate has dropped out can no longer bind and is refused (the client
// makes a full handshake next time).
const maxHistory = 8

// Served returns the certificates that may have been served on the request's
// connection: the one recorded at a full handshake, or for a resumed session (Go
// does not call GetCertificate then) every certificate this process has served.
// It returns nil when the request did not arrive over a Listener of f.
func (f *Files) Served(ctx context.Context) []*Certificate {
	bc, ok := ctx.Value(ctxKey{}).(*boundConn)
	if !ok {
		return nil
	}
	if c := bc.served.Load(); c != nil {
		return []*Certificate{c}
	}
	return *f.history.Load()
}

// Current is the certificate new connections get.
func (f *Files) Current() *Certificate { return f.current.Load() }

// Reload loads the files again if they changed since the last load, and reports
// whether the served certificate changed. A pair that fails to load leaves the
// current one in place (a half-written file must not take the listener down).
func (f *Files) Reload() (bool, error) {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	st, err := stampOf(f.certFile, f.keyFile)
	if err != nil {
		return false, err
	}
	if st == f.stamp {
		return false, nil
	}
	c, err := loadPair(f.certFile, f.keyFile)
	if err != nil {
		return false, err
	}
	f.stamp = st
	old := f.current.Swap(c)
	if bytes.Equal(old.Leaf.Raw, c.Leaf.Raw) {
		return false, nil
	}
	h := append([]*Certificate{c}, *f.history.Load()...)
	if len(h) > maxHistory {
		h = h[:maxHistory]
	}
	f.history.Store(&h)
	return true, nil
}

func (f *Files) watch(interval time.Duration) {
	defer close(f.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		changed, err := f.Reload()
		switch {
		case err != nil:
			f.log.Error("TLS certificate reload failed; still serving the previous certificate",
				"cert", f.certFile, "key", f.keyFile, "error", err.Error())
		case changed:
			c := f.Current()
			f.log.Info("TLS certificate reloaded", "cert", f.certFile, "subject", c.Leaf.Subject.String(),
				"serial", c.Leaf.SerialNumber.String(), "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
}

// Close stops watching the files.
func (f *Files) Close() error {
	f.closeOnce.Do(func() { close(f.stop) })
	<-f.done
	return nil
}

// Config is the server TLS configuration: TLS 1.2 or later, the current certificate.
func (f *Files) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c := f.Current()
			// Record what this connection is served, for channel binding.
			if bc, ok := hello.Conn.(*boundConn); ok {
				bc.served.Store(c)
			}
			return c.TLS, nil
		},
		NextProtos: []string{"h2", "http/1.1"},
	}
}

// boundConn is a raw connection that remembers the certificate served on it.
type boundConn struct {
	net.Conn
	served atomic.Pointer[Certificate]
}

type boundListener struct{ net.Listener }

func (l boundListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &boundConn{Conn: c}, nil
}

// Listener wraps a TCP listener in TLS with f's configuration.
func (f *Files) Listener(ln net.Listener) net.Listener {
	return tls.NewListener(boundListener{ln}, f.Config())
}

type ctxKey struct{}

// ConnContext is for http.Server.ConnContext: it makes the served certificate
// available to the connection's requests (see Files.Served).
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if bc, ok := tc.NetConn().(*boundConn); ok {
			return context.WithValue(ctx, ctxKey{}, bc)
		}
	}
	return ctx
}
