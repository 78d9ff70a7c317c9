package events

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestCodesMatchTheirPatterns: each code's check accepts exactly what the
// pattern its refusal names accepts, on strings at and around the length
// bounds drawn from every character class.
func TestCodesMatchTheirPatterns(t *testing.T) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._- /é"
	r := rand.New(rand.NewPCG(7, 7))
	codes := map[string]Code{"vendor": VendorCode, "serial": SerialCode, "customer": CustomerNoCode, "account": AccountNoCode,
		"institution": InstitutionCode, "actor": ActorIDCode, "key": KeyIDCode, "generator": GeneratorNoCode}
	for name, c := range codes {
		re := regexp.MustCompile(c.Pattern)
		accepted := 0
		for n := range 70 {
			for range 200 {
				var b strings.Builder
				// Mostly characters a class allows, so that long valid strings occur.
				base := []string{"0123456789", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}[r.IntN(2)]
				for range n {
					if r.IntN(8) > 0 {
						b.WriteByte(base[r.IntN(len(base))])
					} else {
						b.WriteString(string([]rune(alphabet)[r.IntN(len([]rune(alphabet)))]))
					}
				}
				s := b.String()
				if got, want := c.valid(s), re.MatchString(s); got != want {
					t.Fatalf("%s %q: check says %v, pattern %s says %v", name, s, got, c.Pattern, want)
				}
				if c.valid(s) {
					accepted++
				}
			}
		}
		if accepted == 0 {
			t.Errorf("%s: no generated string accepted", name)
		}
		if got := c.Refusal("f"); got.Field != "f" || got.Reason != "must match "+c.Pattern {
			t.Errorf("%s refusal: %+v", name, got)
		}
	}
}
