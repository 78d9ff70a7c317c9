package aggregates

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/otpledger/otpledger/events"
)

func asField(err error, fe **events.FieldError) bool { return errors.As(err, fe) }

// ruleRowNames counts the rule-table rows by "<rule id> allowed" and
// "<rule id> refused", read from this package's test sources.
func ruleRowNames(t *testing.T) map[string]int {
	t.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`name: "(R-[A-Z-]+) (allowed|refused)`)
	out := map[string]int{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			out[m[1]+" "+m[2]]++
		}
	}
	return out
}
