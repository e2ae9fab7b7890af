package config

import (
	"log/slog"
	"os"
	"strings"
)

// Log is the log section.
type Log struct {
	// Level is the least severe level logged; slog.LevelInfo by default.
	Level slog.Level
	// Format is "json" (the default) or "text".
	Format string
	// ExposeReasons makes refusals carry a Kerbgate-Reason response header saying why
	// sign-in failed. Off by default: the reason helps attackers as much as admins.
	ExposeReasons bool
	// DebugTokenFile, when set, enables GET /debug/last-failures for requests
	// carrying "Authorization: Bearer <the file's content>". Off by default.
	DebugTokenFile string
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func decodeLog(m *mapping, c *Config) {
	l := &c.Log

	l.Level = slog.LevelInfo
	f := m.field("level", "one of debug, info, warn, error")
	if s, ok := f.str(); ok {
		if v, known := logLevels[strings.ToLower(s)]; known {
			l.Level = v
		} else {
			f.invalid("%s is not a log level", describe(f.val))
		}
	}

	l.Format = "json"
	f = m.field("format", "json or text")
	if s, ok := f.str(); ok {
		switch v := strings.ToLower(s); v {
		case "json", "text":
			l.Format = v
		default:
			f.invalid("%s is not a log format", describe(f.val))
		}
	}

	f = m.field("expose_reasons", "true or false")
	if v, ok := f.bool(); ok {
		l.ExposeReasons = v
	}

	f = m.field("debug_token_file", "a file holding the bearer token (at least 32 characters) that GET /debug/last-failures requires")
	if v, ok := f.str(); ok {
		abs, shown := resolvedPath(f, v)
		if checkReadable(f, abs, shown, f.expect) {
			if b, err := os.ReadFile(abs); err != nil || len(strings.TrimSpace(string(b))) < 32 {
				f.errorf("%s holds fewer than 32 characters; expected %s", shown, f.expect)
			} else {
				l.DebugTokenFile = abs
			}
		}
	}
}
