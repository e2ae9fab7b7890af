package diagnose

import "testing"

// The estimate is fitted to real tokens from the test domain (measured with curl
// --negotiate against kerbgate): it must stay within 10 % of them.
func TestEstimateTokenBytes(t *testing.T) {
	for _, c := range []struct {
		name              string
		inDomain, outside int
		measured          int
	}{
		{"alice", 1, 1, 1908},  // Domain Users, plus one well-known SID
		{"dave", 131, 1, 3284}, // 130 groups, Domain Users, one well-known SID
	} {
		got := EstimateTokenBytes(c.inDomain, c.outside)
		if d := float64(got-c.measured) / float64(c.measured); d > 0.1 || d < -0.1 {
			t.Errorf("%s: estimate %d vs measured %d", c.name, got, c.measured)
		}
	}
}

func TestWorst(t *testing.T) {
	if Worst(nil) != OK || Worst([]Finding{{Status: Warn}, {Status: OK}}) != Warn ||
		Worst([]Finding{{Status: Warn}, {Status: Fail}, {Status: OK}}) != Fail {
		t.Fatal("Worst")
	}
}
