package reason

import (
	"fmt"
	"sort"
	"strings"
)

// Markdown renders the catalog as the reference table in docs/reasons.md.
func Markdown() string {
	codes := Codes()
	sort.Slice(codes, func(i, j int) bool { return codes[i] < codes[j] })
	var b strings.Builder
	b.WriteString("# Refusal reasons\n\n")
	b.WriteString("Generated from `internal/reason` (`go test ./internal/reason -update`). Every refused\n")
	b.WriteString("request is logged with `reason` and its facts, counted in\n")
	b.WriteString("`kerbgate_refusals_total{reason=...}`, and, with `log.expose_reasons: true`, named in\n")
	b.WriteString("the `Kerbgate-Reason` response header.\n\n")
	b.WriteString("| Code | Status | Cause | What the administrator should do |\n|---|---|---|---|\n")
	for _, c := range codes {
		e := Catalog[c]
		fmt.Fprintf(&b, "| `%s` | %d | %s | %s |\n", c, e.Status, e.Cause, e.Admin)
	}
	return b.String()
}
