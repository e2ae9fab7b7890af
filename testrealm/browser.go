package testrealm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// Browser is a headless Chromium driven over the DevTools protocol: what --dump-dom
// cannot do (fill a form, click), with the same flags and Kerberos setup as the
// tests' chromium runs (the realm's krb5.conf, the ccache given, Negotiate allowed
// for *.example.test).
type Browser struct {
	t       testing.TB
	cmd     *exec.Cmd
	ws      *websocket.Conn
	session string
	stderr  *bytes.Buffer

	mu      sync.Mutex
	nextID  int
	pending map[int]chan cdpMessage
}

type cdpMessage struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// StartBrowser starts headless Chromium as the owner of ccache ("" or a missing
// file: a browser without a Kerberos ticket) and attaches to its page. It is
// stopped when the test ends.
func (r *Realm) StartBrowser(t testing.TB, ccache string, flags ...string) *Browser {
	t.Helper()
	profile := t.TempDir()
	if err := os.WriteFile(filepath.Join(profile, "Local State"), []byte(`{"net":{"received_http_auth_negotiate_headers":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if ccache == "" {
		ccache = filepath.Join(profile, "no-ccache")
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + profile, "--auth-server-allowlist=*.example.test", "--remote-debugging-port=0", "--remote-allow-origins=*"}, flags...)
	b := &Browser{t: t, stderr: &bytes.Buffer{}, pending: map[int]chan cdpMessage{}}
	b.cmd = exec.Command("chromium", append(args, "about:blank")...)
	b.cmd.Env = r.Env(ccache)
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.close)
	// Chromium writes its DevTools port and path into the profile once it listens.
	var endpoint string
	for i := 0; ; i++ {
		if data, err := os.ReadFile(filepath.Join(profile, "DevToolsActivePort")); err == nil {
			if lines := strings.Split(strings.TrimSpace(string(data)), "\n"); len(lines) == 2 {
				endpoint = "ws://127.0.0.1:" + lines[0] + lines[1]
				break
			}
		}
		if i == 300 {
			t.Fatalf("testrealm: chromium did not start DevTools in 30 s\n%s", b.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	ws, err := websocket.Dial(endpoint, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatalf("testrealm: DevTools: %v", err)
	}
	ws.MaxPayloadBytes = 64 << 20
	b.ws = ws
	go b.read()
	var targets struct {
		TargetInfos []struct {
			TargetID string `json:"targetId"`
			Type     string `json:"type"`
		} `json:"targetInfos"`
	}
	b.call("", "Target.getTargets", nil, &targets)
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			var att struct {
				SessionID string `json:"sessionId"`
			}
			b.call("", "Target.attachToTarget", map[string]any{"targetId": ti.TargetID, "flatten": true}, &att)
			b.session = att.SessionID
			break
		}
	}
	if b.session == "" {
		t.Fatal("testrealm: chromium has no page")
	}
	return b
}

func (b *Browser) close() {
	if b.ws != nil {
		b.ws.Close()
	}
	_ = b.cmd.Process.Kill()
	_ = b.cmd.Wait()
}

func (b *Browser) read() {
	for {
		var m cdpMessage
		var raw []byte
		if err := websocket.Message.Receive(b.ws, &raw); err != nil {
			b.mu.Lock()
			for id, ch := range b.pending {
				close(ch)
				delete(b.pending, id)
			}
			b.mu.Unlock()
			return
		}
		if json.Unmarshal(raw, &m) != nil || m.ID == 0 {
			continue // an event
		}
		b.mu.Lock()
		ch := b.pending[m.ID]
		delete(b.pending, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends one DevTools command (on the page's session unless session is the
// browser's, "") and decodes its result into out, failing the test on an error.
func (b *Browser) call(session, method string, params, out any) {
	b.t.Helper()
	if err := b.try(session, method, params, out); err != nil {
		b.t.Fatalf("testrealm: %v\n%s", err, b.stderr.String())
	}
}

// try is call returning its error (a page navigating away has no context to
// evaluate in for a moment).
func (b *Browser) try(session, method string, params, out any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if err := websocket.Message.Send(b.ws, string(data)); err != nil {
		return fmt.Errorf("DevTools %s: %v", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return fmt.Errorf("DevTools closed during %s", method)
		}
		if m.Error != nil {
			return fmt.Errorf("DevTools %s: %s", method, m.Error.Message)
		}
		if out != nil {
			if err := json.Unmarshal(m.Result, out); err != nil {
				return fmt.Errorf("DevTools %s result: %v", method, err)
			}
		}
		return nil
	case <-time.After(60 * time.Second):
		return fmt.Errorf("DevTools %s: no answer in 60 s", method)
	}
}

// Navigate loads url in the page (it does not wait for the load: see WaitFor).
func (b *Browser) Navigate(url string) {
	b.t.Helper()
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
}

// Eval evaluates a JavaScript expression in the page and returns its value as
// JSON (a string value as a JSON string).
func (b *Browser) Eval(expr string) json.RawMessage {
	b.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := b.try(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res); err != nil ||
		res.ExceptionDetails != nil {
		return nil // navigating, or the expression threw: no value
	}
	return res.Result.Value
}

// Text is the page's text (document.body.innerText), "" while there is none.
func (b *Browser) Text() string {
	b.t.Helper()
	var s string
	_ = json.Unmarshal(b.Eval(`document.body ? document.body.innerText : ""`), &s)
	return s
}

// URL is the page's address.
func (b *Browser) URL() string {
	b.t.Helper()
	var s string
	_ = json.Unmarshal(b.Eval(`location.href`), &s)
	return s
}

// WaitFor waits until the JavaScript expression is true in the page, failing the
// test with the page's text when timeout passes first.
func (b *Browser) WaitFor(expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if v := b.Eval(`!!(` + expr + `)`); string(v) == "true" {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("testrealm: waited %s for %s at %s; the page says:\n%s", timeout, expr, b.URL(), b.Text())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Fill sets the value of the input selected by a CSS selector.
func (b *Browser) Fill(selector, value string) {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	val, _ := json.Marshal(value)
	if v := b.Eval(fmt.Sprintf(`(function(){var e=document.querySelector(%s); if(!e) return false; e.value=%s; return true})()`, sel, val)); string(v) != "true" {
		b.t.Fatalf("testrealm: no %s on %s:\n%s", selector, b.URL(), b.Text())
	}
}

// Click clicks the element selected by a CSS selector.
func (b *Browser) Click(selector string) {
	b.t.Helper()
	sel, _ := json.Marshal(selector)
	if v := b.Eval(fmt.Sprintf(`(function(){var e=document.querySelector(%s); if(!e) return false; e.click(); return true})()`, sel)); string(v) != "true" {
		b.t.Fatalf("testrealm: no %s on %s:\n%s", selector, b.URL(), b.Text())
	}
}
