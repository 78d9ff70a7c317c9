package aggregates

import (
	"testing"
	"unicode"
)

// TestEveryRuleHasAMessage: each rule of domain.md §4 has a Korean message
// (in Hangul) and an English one, and the catalogue names no other rule.
func TestEveryRuleHasAMessage(t *testing.T) {
	for _, r := range Rules {
		txt := r.Text()
		hangul := false
		for _, c := range txt.Ko {
			hangul = hangul || unicode.Is(unicode.Hangul, c)
		}
		if !hangul || txt.En == "" {
			t.Errorf("%s: %+v", r, txt)
		}
	}
	if len(ruleTexts) != len(Rules) {
		t.Errorf("the catalogue holds %d rules, domain.md %d", len(ruleTexts), len(Rules))
	}
}
