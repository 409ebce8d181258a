package frontend

import (
	"strings"
	"testing"
)

// dnf's "Operation aborted." is seen when a write splits it, and stays
// seen through what dnf writes after it (its "Error: ..." lines).
func TestPhraseWatch(t *testing.T) {
	var out strings.Builder
	p := &phraseWatch{w: &out, phrase: dnfAborted}
	for _, b := range []string{"Is this ok [y/N]: Operation ab", "orted.\n", "Error: The operation was aborted.\n"} {
		if n, err := p.Write([]byte(b)); n != len(b) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", b, n, err)
		}
	}
	if !p.seen || !strings.HasSuffix(out.String(), "Error: The operation was aborted.\n") {
		t.Errorf("seen %t, passed on %q; want seen, and everything passed on", p.seen, out.String())
	}
}
