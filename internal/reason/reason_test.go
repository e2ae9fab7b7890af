package reason

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/reasons.md")

func TestEveryCodeIsComplete(t *testing.T) {
	for _, c := range Codes() {
		e := Catalog[c]
		if e.Status < 400 || e.Title == "" || e.Cause == "" || e.Admin == "" {
			t.Errorf("%s: incomplete entry %+v", c, e)
		}
	}
	if Lookup("no_such_code").Status != 500 {
		t.Error("unknown codes must render as internal errors")
	}
}

func TestReasonsDocIsCurrent(t *testing.T) {
	const path = "../../docs/reasons.md"
	want := Markdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("docs/reasons.md is stale: run go test ./internal/reason -update")
	}
}

func TestFactsAreInTheMessage(t *testing.T) {
	e := New(KVNONotInKeytab, "stale keytab", "ticket_kvno", 3, "keytab_kvnos", "2")
	if got := e.Error(); got != "kvno_not_in_keytab: stale keytab ticket_kvno=3 keytab_kvnos=2" {
		t.Errorf("%q", got)
	}
	if Of(e) != e || Of(os.ErrNotExist).Code != Internal {
		t.Error("Of")
	}
}
