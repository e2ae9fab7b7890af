package fast

import (
	"testing"
)

// FuzzParse feeds the parsers of what a KDC sends back (KrbFastResponse, METHOD-DATA,
// PA-ETYPE-INFO2) arbitrary bytes: they must not panic, and what they accept keeps
// within their bounds.
func FuzzParse(f *testing.F) {
	md, _ := MarshalPAData([]PAData{{Type: PAETypeInfo2, Value: []byte{0x30, 0x00}}, {Type: PAFXCookie, Value: []byte("cookie")}})
	f.Add(md)
	f.Add([]byte{0x30, 0x0f, 0x30, 0x0d, 0xa0, 0x03, 0x02, 0x01, 0x12, 0xa1, 0x06, 0x1b, 0x04, 'S', 'A', 'L', 'T'})
	f.Add([]byte{0x30, 0x0b, 0xa0, 0x02, 0x30, 0x00, 0xa3, 0x05, 0x02, 0x03, 0x01, 0x02, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseResponse(b); err == nil && len(r.PAData) > 65 {
			t.Fatalf("%d PA-DATA accepted", len(r.PAData))
		}
		if pas, err := ParseMethodData(b); err == nil && len(pas) > 65 {
			t.Fatalf("%d PA-DATA accepted", len(pas))
		}
		if es, err := ParseETypeInfo2(b); err == nil && len(es) > 17 {
			t.Fatalf("%d ETYPE-INFO2 entries accepted", len(es))
		}
	})
}
