package logon

import (
	"testing"

	"github.com/jcmturner/gokrb5/v8/messages"
)

// FuzzASAnswer feeds the reader of a KDC's answer to an AS-REQ (AS-REP or
// KRB-ERROR, and the NT status in its e-data) arbitrary bytes: no panic.
func FuzzASAnswer(f *testing.F) {
	f.Add([]byte{0x7e, 0x03, 0x30, 0x01, 0x00})
	f.Add([]byte{0x6b, 0x03, 0x30, 0x01, 0x00})
	f.Add([]byte{0x30, 0x0d, 0xa1, 0x03, 0x02, 0x01, 0x03, 0xa2, 0x06, 0x04, 0x04, 0x72, 0x00, 0x00, 0xc0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseASAnswer(b)
		_, _ = ntStatus(&messages.KRBError{EData: b}, nil)
	})
}
