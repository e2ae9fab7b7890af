package refusal

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kerbgate/kerbgate/internal/reason"
)

func reporter(t *testing.T, expose bool) (*Reporter, *bytes.Buffer, *prometheus.Registry) {
	t.Helper()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	rp, err := NewReporter(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), reg, expose)
	if err != nil {
		t.Fatal(err)
	}
	return rp, &logs, reg
}

func TestRefusalIsRenderedLoggedAndCounted(t *testing.T) {
	rp, logs, _ := reporter(t, true)
	req := httptest.NewRequest("GET", "/whoami", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	rp.Refuse(rec, req, reason.New(reason.KVNONotInKeytab, "stale keytab", "ticket_kvno", 3, "keytab_kvnos", "2"))
	if rec.Code != 401 || rec.Header().Get(HeaderReason) != "kvno_not_in_keytab" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if body := rec.Body.String(); !strings.Contains(body, "Service key out of date") || !strings.Contains(body, "Export a new keytab") {
		t.Errorf("page: %s", body)
	}
	if l := logs.String(); !strings.Contains(l, `"reason":"kvno_not_in_keytab"`) || !strings.Contains(l, `"ticket_kvno":3`) || !strings.Contains(l, `"level":"WARN"`) {
		t.Errorf("log: %s", l)
	}
	if n := testutil.ToFloat64(rp.refusals.WithLabelValues("kvno_not_in_keytab")); n != 1 {
		t.Errorf("counter %v", n)
	}
}

func TestReasonHiddenUnlessExposed(t *testing.T) {
	rp, _, _ := reporter(t, false)
	rec := httptest.NewRecorder()
	rp.Refuse(rec, httptest.NewRequest("GET", "/", nil), reason.New(reason.SPNMismatch, "other SPN"))
	if rec.Header().Get(HeaderReason) != "" || strings.Contains(rec.Body.String(), "spn_mismatch") {
		t.Fatalf("reason leaked: %v %s", rec.Header(), rec.Body)
	}
	if !strings.Contains(rec.Body.String(), "Reference: ") {
		t.Error("no reference to find the log line")
	}
}

func TestHTMLEscapesNothingFromTheRequest(t *testing.T) {
	rp, _, _ := reporter(t, true)
	req := httptest.NewRequest("GET", "/<script>", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	rp.Refuse(rec, req, reason.New(reason.MalformedToken, "<script>alert(1)</script>"))
	if strings.Contains(rec.Body.String(), "<script>") {
		t.Fatal("request data reflected in the page")
	}
}

// Issue 13 item 9: a refusal logs the route, never a raw path that may carry a
// session id or token, and the recent failures keep the route too.
func TestRefusalLogsTheRouteNotThePath(t *testing.T) {
	rp, logs, _ := reporter(t, true)
	const id = "VKLdLnpKugxwhDuu3jyaFJoJRtaaYo8wkg-5o9Y2jWU"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sso/sessions/{id}", func(w http.ResponseWriter, r *http.Request) {
		rp.RefuseJSON(w, r, reason.New(reason.SessionNotFound, "no such session"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "" // as the application proxy sees a request: no pattern
		rp.Refuse(w, r, reason.New(reason.NoToken, "none"))
		rp.Refuse(w, r, reason.New(reason.Replay, "again"))
	})
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/sso/sessions/"+id, nil))
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/app/docs/"+id+"/callback?ssoToken="+id, nil))
	if strings.Contains(logs.String(), id) {
		t.Errorf("log holds the id:\n%s", logs)
	}
	for _, want := range []string{`"route":"GET /sso/sessions/{id}"`, `"route":"GET /app/docs/{redacted}/callback"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	for _, f := range rp.Recent() {
		if strings.Contains(f.Route, id) || !strings.Contains(f.Route, "{") {
			t.Errorf("recent failure keeps %q", f.Route)
		}
	}
}

// A flood of busy or rate_limited refusals is counted in full but logged about once
// a second, saying how many lines it left out.
func TestFloodRefusalsAreSampledInTheLog(t *testing.T) {
	rp, logs, _ := reporter(t, true)
	for i := 0; i < 1000; i++ {
		rec := httptest.NewRecorder()
		rp.RefuseJSON(rec, httptest.NewRequest("POST", "/sso/redeem", nil), reason.New(reason.RateLimited, "too many"))
	}
	if n := testutil.ToFloat64(rp.refusals.WithLabelValues("rate_limited")); n != 1000 {
		t.Errorf("counted %v, want 1000", n)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Errorf("%d log lines for a burst of 1000, want 1", n)
	}
	rp.sampled[reason.RateLimited].last = time.Now().Add(-time.Second)
	rp.RefuseJSON(httptest.NewRecorder(), httptest.NewRequest("POST", "/sso/redeem", nil), reason.New(reason.RateLimited, "too many"))
	if !strings.Contains(logs.String(), `"suppressed_since_last":999`) {
		t.Errorf("log does not count the left-out lines:\n%s", logs)
	}
}

func TestNoteLogsAndCounts(t *testing.T) {
	rp, logs, _ := reporter(t, true)
	rp.Note(httptest.NewRequest("POST", "/oidc/oauth/token", nil), reason.New(reason.OIDCInvalidGrant, "code used before", "client", "rp"))
	if l := logs.String(); !strings.Contains(l, `"reason":"oidc_invalid_grant"`) || !strings.Contains(l, `"client":"rp"`) {
		t.Errorf("log: %s", l)
	}
	if n := testutil.ToFloat64(rp.refusals.WithLabelValues("oidc_invalid_grant")); n != 1 {
		t.Errorf("counter %v", n)
	}
	if f := rp.Recent(); len(f) != 1 || f[0].Reason != reason.OIDCInvalidGrant {
		t.Errorf("recent %+v", f)
	}
}
