package oidcprovider

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
)

// The protocol library logs only through slog's default logger (its WithLogger
// option does nothing in v3), always with the request's context. routeLibraryLog
// makes slog's default logger one that hands each record to the kerbgate logger of
// the provider serving the request (the requestInfo in the context), marked
// library=zitadel/oidc, with every value that could be a secret (a code, a token, a
// client's state, an id) redacted: nothing of the library's reaches stderr
// unstructured, and it keeps to kerbgate's log hygiene. Below error level its
// records are debug: they repeat the refusals kerbgate logs itself.
//
// The log package's output, which slog.SetDefault would redirect too, stays where
// it was. A record without a request of a provider goes to the newest provider's
// logger (a process has one).

var (
	routeOnce  sync.Once
	newestLog  atomic.Pointer[slog.Logger]
	libraryTag = slog.String("library", "zitadel/oidc")
)

func routeLibraryLog(l *slog.Logger) {
	newestLog.Store(l)
	routeOnce.Do(func() {
		w, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
		slog.SetDefault(slog.New(libraryHandler{}))
		log.SetOutput(w)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	})
}

// libraryHandler is slog's default handler once a provider exists.
type libraryHandler struct {
	// with replays WithAttrs and WithGroup on the handler a record goes to.
	with []func(slog.Handler) slog.Handler
}

func (h libraryHandler) target(ctx context.Context) slog.Handler {
	var t slog.Handler = slog.DiscardHandler
	if ri, ok := ctx.Value(requestKey{}).(*requestInfo); ok && ri.log != nil {
		t = ri.log.Handler()
	} else if l := newestLog.Load(); l != nil {
		t = l.Handler()
	}
	for _, f := range h.with {
		t = f(t)
	}
	return t
}

func (h libraryHandler) Enabled(ctx context.Context, level slog.Level) bool {
	if level < slog.LevelError {
		level = slog.LevelDebug
	}
	return h.target(ctx).Enabled(ctx, level)
}

func (h libraryHandler) Handle(ctx context.Context, r slog.Record) error {
	level := r.Level
	if level < slog.LevelError {
		// The library logs every error answer it writes; kerbgate logs each
		// refusal itself, with its reason and facts (observe.go): the library's
		// own line is detail.
		level = slog.LevelDebug
	}
	out := slog.NewRecord(r.Time, level, redact(r.Message), r.PC)
	out.AddAttrs(libraryTag)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.target(ctx).Handle(ctx, out)
}

func (h libraryHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redactAttr(a)
	}
	return libraryHandler{with: append(h.with[:len(h.with):len(h.with)], func(t slog.Handler) slog.Handler { return t.WithAttrs(clean) })}
}

func (h libraryHandler) WithGroup(name string) slog.Handler {
	return libraryHandler{with: append(h.with[:len(h.with):len(h.with)], func(t slog.Handler) slog.Handler { return t.WithGroup(name) })}
}

// redactAttr is a with every string in it (errors and other values as their text)
// redacted.
func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redact(x.Error()))
		case []string:
			clean := make([]string, len(x))
			for i, s := range x {
				clean[i] = redact(s)
			}
			return slog.Any(a.Key, clean)
		default:
			return slog.String(a.Key, redact(fmt.Sprint(x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// secretRun is a run of the characters tokens, codes, ids and JWTs are written in
// (base64url, base64 and '.'-joined parts), long enough to be one.
var secretRun = regexp.MustCompile(`[A-Za-z0-9_~+.\-]{20,}=*`)

// redact replaces in s every run that could be a secret: 20 characters or more of
// those alphabets with a digit or one of -_+= in it, or 32 or more of any of them.
// Words, host names and paths stay.
func redact(s string) string {
	return secretRun.ReplaceAllStringFunc(s, func(run string) string {
		if len(run) >= 32 {
			return "{redacted}"
		}
		for _, c := range run {
			if c >= '0' && c <= '9' || c == '-' || c == '_' || c == '+' || c == '=' {
				return "{redacted}"
			}
		}
		return run
	})
}
