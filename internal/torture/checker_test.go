package torture

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// lockedThenReset is one device's history: registered at v1, ten accepted
// increments (v2..v11), an increment refused at the lock, then a reset
// acknowledged at v12 by another client; then tail.
func lockedThenReset(tail ...Op) []Op {
	ops := []Op{{Client: 2, Device: "D1", Kind: Register, Key: "reg", Call: 0, Return: 1, Outcome: Accepted, Version: 1, EventIDs: []string{"e1"}}}
	for i := range Lock {
		at := int64(10 + 2*i)
		ops = append(ops, Op{Client: 0, Device: "D1", Kind: Increment, Key: fmt.Sprint("inc", i), Call: at, Return: at + 1,
			Outcome: Accepted, Version: uint64(2 + i), EventIDs: []string{fmt.Sprint("e", 2+i)}})
	}
	ops = append(ops,
		Op{Client: 0, Device: "D1", Kind: Increment, Key: "inc-locked", Call: 40, Return: 41, Outcome: Refused, Rule: "R-HW-LOCK"},
		Op{Client: 1, Device: "D1", Kind: Reset, Key: "reset", Call: 50, Return: 60, Outcome: Accepted, Version: 12, EventIDs: []string{"e12"}})
	return append(ops, tail...)
}

// journalOf is what the journal holds for lockedThenReset: the events the
// answers named, in version order.
func journalOf(ops []Op) []Stored {
	var st []Stored
	count := 0
	for _, o := range ops {
		if o.Outcome != Accepted || o.Kind == Read {
			continue
		}
		switch o.Kind {
		case Increment:
			count++
		case Reset, Register:
			count = 0
		}
		st = append(st, Stored{Device: o.Device, Version: o.Version, ID: o.EventIDs[0], Key: o.Key, Type: string(o.Kind), Count: count})
	}
	slices.SortFunc(st, func(a, b Stored) int { return int(a.Version) - int(b.Version) })
	return st
}

// TestCheckerFindsAStaleRefusal: an increment refused R-HW-LOCK after a
// reset had been acknowledged (by another client, before the increment was
// invoked) is not linearizable — issue 26 finding 1 — and Explain names it a
// stale refusal; Porcupine's visualization is written.
func TestCheckerFindsAStaleRefusal(t *testing.T) {
	t.Parallel()
	stale := Op{Client: 0, Device: "D1", Kind: Increment, Key: "inc-stale", Call: 61, Return: 70, Outcome: Refused, Rule: "R-HW-LOCK"}
	ops := lockedThenReset(stale)
	v := Check(ops, 10*time.Second)
	if v.Result != porcupine.Illegal {
		t.Fatalf("a refusal after an acknowledged reset: %s, want Illegal", v.Result)
	}
	an := Explain(ops, journalOf(ops))
	if len(an.StaleRefusals) != 1 || an.StaleRefusals[0].Key != "inc-stale" || len(an.StaleReads)+len(an.WrongReads) != 0 {
		t.Errorf("explain: %s %v", an, an.StaleRefusals)
	}
	path := filepath.Join(t.TempDir(), "linearizability.html")
	if err := v.Visualize(path); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || !strings.Contains(string(data), "R-HW-LOCK") {
		t.Errorf("the visualization does not show the history: %v", err)
	}
}

// TestCheckerFindsAStaleRead: a read answering the count from before an
// acknowledged reset is not linearizable.
func TestCheckerFindsAStaleRead(t *testing.T) {
	t.Parallel()
	ops := lockedThenReset(Op{Client: 0, Device: "D1", Kind: Read, Call: 61, Return: 62, Outcome: Accepted, Version: 11, Count: 10, Locked: true})
	if v := Check(ops, 10*time.Second); v.Result != porcupine.Illegal {
		t.Fatalf("a read of the locked state after an acknowledged reset: %s, want Illegal", v.Result)
	}
	if an := Explain(ops, journalOf(ops)); len(an.StaleReads) != 1 {
		t.Errorf("explain: %s", an)
	}
}

// TestCheckerAcceptsLinearizableHistories: a refusal concurrent with the
// reset, a read after it, and increments of unknown outcome (one that
// happened, one that did not) are all linearizable.
func TestCheckerAcceptsLinearizableHistories(t *testing.T) {
	t.Parallel()
	for name, tail := range map[string][]Op{
		"refusal concurrent with the reset": {{Client: 0, Device: "D1", Kind: Increment, Key: "inc-c", Call: 55, Return: 65, Outcome: Refused, Rule: "R-HW-LOCK"}},
		"read after the reset":              {{Client: 0, Device: "D1", Kind: Read, Call: 61, Return: 62, Outcome: Accepted, Version: 12}},
		"unknown increment that happened": {
			{Client: 0, Device: "D1", Kind: Increment, Key: "inc-u", Call: 61, Return: 62, Outcome: Unknown},
			{Client: 1, Device: "D1", Kind: Read, Call: 70, Return: 71, Outcome: Accepted, Version: 13, Count: 1}},
		"unknown increment that did not happen": {
			{Client: 0, Device: "D1", Kind: Increment, Key: "inc-u", Call: 61, Return: 62, Outcome: Unknown},
			{Client: 1, Device: "D1", Kind: Read, Call: 70, Return: 71, Outcome: Accepted, Version: 12}},
		"failed increment": {
			{Client: 0, Device: "D1", Kind: Increment, Key: "inc-f", Call: 61, Return: 62, Outcome: Failed},
			{Client: 1, Device: "D1", Kind: Read, Call: 70, Return: 71, Outcome: Accepted, Version: 12}},
	} {
		ops := lockedThenReset(tail...)
		if v := Check(ops, 10*time.Second); v.Result != porcupine.Ok {
			t.Errorf("%s: %s, want Ok", name, v.Result)
		}
		stored := journalOf(ops)
		if name == "unknown increment that happened" {
			stored = append(stored, Stored{Device: "D1", Version: 13, ID: "e13", Key: "inc-u", Count: 1})
		}
		if an := Explain(ops, stored); len(an.StaleRefusals)+len(an.StaleReads)+len(an.WrongReads) != 0 {
			t.Errorf("%s: explain %s", name, an)
		}
	}
}

// TestAccountingFindsLostAndDuplicated: against a journal that lost an
// acknowledged event, holds another twice, holds one no answer named, and
// holds the event of a command answered refused, the accounting reports
// each; the whole journal accounts clean.
func TestAccountingFindsLostAndDuplicated(t *testing.T) {
	t.Parallel()
	ops := lockedThenReset(
		Op{Client: 1, Device: "D1", Kind: Increment, Key: "inc-u", Call: 61, Return: 62, Outcome: Unknown},
		Op{Client: 0, Device: "D1", Kind: Increment, Key: "inc-r", Call: 63, Return: 64, Outcome: Refused, Rule: "R-HW-LOCK"})
	full := journalOf(ops)
	full = append(full, Stored{Device: "D1", Version: 13, ID: "e13", Key: "inc-u", Count: 1}) // the unknown one happened
	if a := Account(ops, full); !a.Ok() || a.Acknowledged != 12 || a.Unknown != 1 || a.UnknownStored != 1 {
		t.Fatalf("the whole journal: %s", a)
	}
	planted := slices.Clone(full)
	planted = slices.DeleteFunc(planted, func(s Stored) bool { return s.ID == "e5" })               // lost
	planted = append(planted, Stored{Device: "D1", Version: 14, ID: "e7", Key: "inc5", Count: 2})   // duplicated
	planted = append(planted, Stored{Device: "D1", Version: 15, ID: "x1", Key: "nobody", Count: 3}) // unexpected
	planted = append(planted, Stored{Device: "D1", Version: 16, ID: "x2", Key: "inc-r", Count: 4})  // stored, answered refused
	a := Account(ops, planted)
	if a.Ok() || !slices.Equal(a.Lost, []string{"e5"}) || !slices.Equal(a.Duplicated, []string{"e7"}) ||
		!slices.Equal(a.Unexpected, []string{"x1"}) || len(a.StoredButRefused) != 1 || a.StoredButRefused[0].Key != "inc-r" {
		t.Errorf("planted: %s (lost %v, duplicated %v, unexpected %v)", a, a.Lost, a.Duplicated, a.Unexpected)
	}
}

// TestAccountingJournalKeys holds the accounting to the keys the journal
// stores (the HTTP layer's digest of key and principal): a command of
// unknown outcome that was stored is counted as such, not as an
// unexpected event, and a stored command answered refused is found.
func TestAccountingJournalKeys(t *testing.T) {
	ops := []Op{
		{Client: 0, Device: "D1", Kind: Increment, Key: "acked", Outcome: Accepted, Version: 1, EventIDs: []string{"e1"}},
		{Client: 0, Device: "D1", Kind: Increment, Key: "unknown", Outcome: Unknown},
		{Client: 1, Device: "D1", Kind: Reset, Key: "refused", Outcome: Refused, Rule: "R-X"},
	}
	stored := []Stored{
		{Device: "D1", Version: 1, ID: "e1", Key: journalKey("acked", "AUTH")},
		{Device: "D1", Version: 2, ID: "e2", Key: journalKey("unknown", "AUTH")},
		{Device: "D1", Version: 3, ID: "e3", Key: journalKey("refused", "CENTER")},
	}
	if err := clientKeys(ops, stored); err != nil {
		t.Fatal(err)
	}
	a := Account(ops, stored)
	if len(a.Unexpected) != 0 || a.UnknownStored != 1 || len(a.StoredButRefused) != 1 {
		t.Errorf("journal keys: %s; want 0 unexpected, 1 unknown stored, 1 stored command answered refused", a)
	}
	stored[0].Key = "http-another"
	if err := clientKeys(ops, stored); err == nil {
		t.Error("an acknowledged event under a key the harness does not derive went unnoticed")
	}
}
