package oidcprovider

import (
	"bytes"
	"context"
	"errors"
	"log"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactKeepsWordsAndHidesSecrets(t *testing.T) {
	for in, want := range map[string]string{
		"invalid code_verifier":                                       "invalid code_verifier",
		"http://app.example.test:9/callback":                          "http://app.example.test:9/callback",
		"client_secret_basic":                                         "client_secret_basic",
		"code=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcdef":           "code={redacted}",
		"token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl end": "token {redacted} end",
		"family Zm9vYmFyYmF6cXV4cXV1eDEy.cmFuZG9tcGFydDAxMjM0NTY3ODk": "family {redacted}",
		"state s-1, short":                                            "state s-1, short",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// The library's records go to the logger of the provider whose request they are
// about (the requestInfo in the context), marked and redacted, debug below error;
// the log package's output is left where it was.
func TestLibraryRecordsGoToTheRequestsLogger(t *testing.T) {
	var mine, newest, stdlog bytes.Buffer
	was := log.Writer()
	log.SetOutput(&stdlog)
	defer log.SetOutput(was)
	routeLibraryLog(slog.New(slog.NewJSONHandler(&newest, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ri := &requestInfo{log: slog.New(slog.NewJSONHandler(&mine, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	ctx := context.WithValue(context.Background(), requestKey{}, ri)

	slog.Log(ctx, slog.LevelWarn, "request error", slog.Any("oidc_error", errors.New("bad code AbCdEfGhIjKlMnOpQrStUvWxYz0123456789")))
	slog.ErrorContext(context.Background(), "no request")
	log.Print("from the log package")

	if l := mine.String(); !strings.Contains(l, `"msg":"request error"`) || !strings.Contains(l, `"library":"zitadel/oidc"`) ||
		!strings.Contains(l, `"level":"DEBUG"`) || !strings.Contains(l, "bad code {redacted}") || strings.Contains(l, "AbCdEf") {
		t.Errorf("the request's logger got %s", l)
	}
	if l := newest.String(); !strings.Contains(l, `"msg":"no request"`) || !strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, "request error") {
		t.Errorf("the newest provider's logger got %s", l)
	}
	if !strings.Contains(stdlog.String(), "from the log package") || strings.Contains(mine.String()+newest.String(), "log package") {
		t.Errorf("the log package's output moved: %q", stdlog.String())
	}
}
