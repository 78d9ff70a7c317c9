package projections

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/internal/streamgen"
)

// oracle is a model of the views written from domain.md §8 alone: it reads
// the events' facts and never calls Apply (nor the aggregates' Evolve).
type oracle struct {
	errors    map[string][2]int          // device → count, locked (0/1)
	regs      map[string]map[string]bool // device → institution → registration active
	accident  map[string]map[string]bool // device → institution → in accident
	branchRec map[string]bool            // device → an in-branch recovery since the last report
	pending   map[uuid.UUID]bool         // branch OTP transactions awaiting approval
	media     map[string]map[string]bool // customer → medium → in force
	lastError map[string]bool            // device or customer → an error has been recorded
	lastReset map[string]bool            // device or customer → a reset has been recorded
	approved  map[uuid.UUID]bool         // events approved
	history   map[string]int             // device → events
	mediaRows map[string]int             // customer → media issued or registered
}

func newOracle() *oracle {
	return &oracle{errors: map[string][2]int{}, regs: map[string]map[string]bool{}, accident: map[string]map[string]bool{},
		branchRec: map[string]bool{}, pending: map[uuid.UUID]bool{}, media: map[string]map[string]bool{},
		lastError: map[string]bool{}, lastReset: map[string]bool{}, approved: map[uuid.UUID]bool{}, history: map[string]int{}, mediaRows: map[string]int{}}
}

func set[K comparable, V any](m map[string]map[K]V, k string, kk K, v V) {
	if m[k] == nil {
		m[k] = map[K]V{}
	}
	m[k][kk] = v
}

func (o *oracle) event(e events.Event) {
	key := e.Aggregate.Key
	if e.Aggregate.Kind == events.KindDevice {
		o.history[key]++
	}
	switch e.Payload.(type) {
	case events.ErrorIncremented:
		o.lastError[key] = true
	case events.ErrorReset:
		o.lastReset[key] = true
	case events.MobileIssued: // a new mobile OTP starts without errors or resets
		o.mediaRows[key]++
		o.lastError[key], o.lastReset[key] = false, false
	case events.Registered:
		if e.Aggregate.Kind == events.KindCustomer {
			o.mediaRows[key]++
		}
	}
	// R-APPROVAL: branch events wait, except approvals, profiles with
	// their real-name claims (no OTP transaction, R-PROFILE), the customer's copy of a home registration or cancellation, and the end of
	// the mobile OTP a home registration replaces (R-ONE-OTP).
	copyOfDevice := e.Aggregate.Kind == events.KindCustomer && (e.Type() == events.TypeRegistered || e.Type() == events.TypeCancelled)
	if r, ok := e.Payload.(events.MobileRevoked); ok && r.Reason == events.RevokeReplacedByHardware {
		copyOfDevice = true
	}
	if e.Channel == events.ChannelBranch && e.Type() != events.TypeApproved && e.Type() != events.TypeCustomerProfiled && e.Type() != events.TypePersonClaimed && !copyOfDevice {
		o.pending[e.ID] = true
	}
	switch p := e.Payload.(type) {
	case events.Approved:
		delete(o.pending, p.EventID)
		o.approved[p.EventID] = true
	case events.Registered:
		if e.Aggregate.Kind == events.KindCustomer {
			set(o.media, key, p.Vendor+"."+p.Serial, true)
			return
		}
		set(o.regs, key, e.Institution, true)
		if _, ok := o.errors[key]; !ok {
			o.errors[key] = [2]int{0, 0}
		}
	case events.Cancelled:
		if e.Aggregate.Kind == events.KindCustomer {
			set(o.media, key, p.Vendor+"."+p.Serial, false)
			return
		}
		set(o.regs, key, e.Institution, false) // kept, ended; the accident stays
	case events.ReportedLost:
		for _, inst := range p.Institutions {
			set(o.accident, key, inst, true)
		}
		o.branchRec[key] = false
	case events.Recovered:
		set(o.accident, key, e.Institution, false)
		if p.InBranch {
			o.branchRec[key] = true
		}
	case events.ErrorIncremented:
		if e.Aggregate.Kind == events.KindDevice {
			locked := 0
			if p.Locked {
				locked = 1
			}
			o.errors[key] = [2]int{p.CountAfter, locked}
		}
	case events.ErrorReset:
		if e.Aggregate.Kind == events.KindDevice {
			o.errors[key] = [2]int{0, 0}
		}
	case events.MobileIssued:
		set(o.media, key, p.GeneratorNo, true)
	case events.MobileRevoked:
		set(o.media, key, p.GeneratorNo, false)
	}
}

// TestViewsMatchTheOracle projects a generated stream into the memory store
// and compares every device's error count, institutions (registered or
// ended, in accident, branch recovery), every customer's media in force and
// the pending approvals with the oracle. The views' apply is shared by the
// memory and PostgreSQL stores (consumers compares those two), so this is
// the check of Apply itself.
func TestViewsMatchTheOracle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 20_000, Devices: 300, Customers: 120, Seed: 21})
	m, o := NewMemory(), newOracle()
	items := make([]Item, 0, len(gen.Commits))
	for i, c := range gen.Commits {
		items = append(items, Item{Seq: uint64(i + 1), Commit: c})
		for _, e := range c.Events {
			o.event(e)
		}
	}
	if err := m.Apply(ctx, items[:len(items)/2]); err != nil {
		t.Fatal(err)
	}
	// A replayed item is skipped, a gap refused: exactly once in effect.
	if err := m.Apply(ctx, items[len(items)/2+1:]); !errors.Is(err, ErrGap) {
		t.Fatalf("an item after a gap: %v", err)
	}
	if err := m.Apply(ctx, items); err != nil {
		t.Fatal(err)
	}
	checked := map[string]int{}
	for dev, want := range o.errors {
		vendor, serial, _ := events.AggregateRef{Kind: events.KindDevice, Key: dev}.DeviceKey()
		e, ok, _, _ := m.DeviceErrors(ctx, vendor, serial)
		locked := 0
		if e.Locked {
			locked = 1
		}
		if !ok || [2]int{e.Count, locked} != want || (e.LastErrorAt != nil) != o.lastError[dev] || (e.LastResetAt != nil) != o.lastReset[dev] {
			t.Errorf("%s error count %+v, oracle %v, errors %v, resets %v", dev, e, want, o.lastError[dev], o.lastReset[dev])
		}
		var history []History
		for cursor := ""; ; {
			page, err := m.DeviceHistory(ctx, vendor, serial, Page{Limit: 3, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			history = append(history, page.Items...)
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(history) != o.history[dev] {
			t.Errorf("%s history of %d rows in pages of 3, oracle %d events", dev, len(history), o.history[dev])
		}
		for _, h := range history {
			if (h.Approval != nil) != o.approved[h.EventID] {
				t.Errorf("%s history row %v approval %+v, oracle approved %v", dev, h.EventID, h.Approval, o.approved[h.EventID])
			}
		}
		insts, _ := m.DeviceInstitutions(ctx, vendor, serial)
		got := map[string]string{}
		for _, r := range insts.Items {
			got[r.Institution] = fmt.Sprintf("active=%v accident=%v branch_recovered=%v", r.Active(), r.InAccident, r.BranchRecovered)
		}
		wantRows := map[string]string{}
		for inst, active := range o.regs[dev] {
			wantRows[inst] = fmt.Sprintf("active=%v accident=%v branch_recovered=%v", active, o.accident[dev][inst], o.branchRec[dev])
		}
		if !maps.Equal(got, wantRows) {
			t.Errorf("%s institutions %v, oracle %v", dev, got, wantRows)
		}
		checked["devices"]++
	}
	for no, media := range o.media {
		var rows []Media
		for cursor := ""; ; { // a reissue is two events of one message: pages of one cut between them
			page, err := m.CustomerMedia(ctx, no, "", Page{Limit: 1, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, page.Items...)
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if len(rows) != o.mediaRows[no] {
			t.Errorf("customer %s: %d media rows in pages of one, oracle %d", no, len(rows), o.mediaRows[no])
		}
		if mob, ok, _, _ := m.MobileOTP(ctx, no, time.Time{}); ok && ((mob.LastErrorAt != nil) != o.lastError[no] || (mob.LastResetAt != nil) != o.lastReset[no]) {
			t.Errorf("customer %s mobile OTP %+v, oracle errors %v resets %v", no, mob, o.lastError[no], o.lastReset[no])
		}
		inForce := map[string]bool{}
		for _, r := range rows {
			if r.IssueStatus == IssueStatusIssued {
				inForce[r.MediumID] = true
			}
		}
		want := map[string]bool{}
		for id, ok := range media {
			if ok {
				want[id] = true
			}
		}
		if !maps.Equal(inForce, want) {
			t.Errorf("customer %s media in force %v, oracle %v", no, slices.Sorted(maps.Keys(inForce)), slices.Sorted(maps.Keys(want)))
		}
		checked["customers"]++
	}
	var pending []uuid.UUID
	for cursor := ""; ; {
		page, err := m.PendingApprovals(ctx, Page{Limit: MaxLimit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Items {
			pending = append(pending, a.EventID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if got, want := len(pending), len(o.pending); got != want {
		t.Errorf("%d pending approvals, oracle %d", got, want)
	}
	for _, id := range pending {
		if !o.pending[id] {
			t.Errorf("pending %v, not in the oracle", id)
		}
	}
	t.Logf("checked %v and %d pending approvals", checked, len(pending))
}

// TestCursorsAndCuts: a page that holds the last rows says so (no cursor),
// and a cursor orders by sequence, then by index within one message.
func TestCursorsAndCuts(t *testing.T) {
	t.Parallel()
	id := func(n int) string { return fmt.Sprint(n) }
	if rows, next := cut([]int{1, 2, 3}, 3, id); len(rows) != 3 || next != "" {
		t.Errorf("exactly a page: %v %q", rows, next)
	}
	if rows, next := cut([]int{1, 2, 3, 4}, 3, id); len(rows) != 3 || next != "3" {
		t.Errorf("more than a page: %v %q", rows, next)
	}
	c := seqCursor{5, 0}
	for _, tc := range []struct {
		seq   uint64
		idx   int
		after bool
	}{{5, 1, true}, {5, 0, false}, {4, 9, false}, {6, 0, true}} {
		if c.before(tc.seq, tc.idx) != tc.after {
			t.Errorf("(%d,%d) after %v: %v", tc.seq, tc.idx, c, !tc.after)
		}
	}
}

// TestReplayIsANoOp: the last item applied again changes nothing.
func TestReplayIsANoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gen := streamgen.Generate(streamgen.Config{Events: 500, Devices: 10, Customers: 5, Seed: 3})
	last := len(gen.Commits) - 1
	for gen.Commits[last].Aggregate().Kind != events.KindDevice {
		last--
	}
	m := NewMemory()
	var items []Item
	for i, c := range gen.Commits[:last+1] {
		items = append(items, Item{Seq: uint64(i + 1), Commit: c})
	}
	if err := m.Apply(ctx, items); err != nil {
		t.Fatal(err)
	}
	vendor, serial, _ := gen.Commits[last].Aggregate().DeviceKey()
	before, _ := m.DeviceHistory(ctx, vendor, serial, Page{Limit: MaxLimit})
	if err := m.Apply(ctx, items[last:]); err != nil {
		t.Fatal(err)
	}
	if after, _ := m.DeviceHistory(ctx, vendor, serial, Page{Limit: MaxLimit}); len(after.Items) != len(before.Items) {
		t.Fatalf("the replayed item added history: %d rows, then %d", len(before.Items), len(after.Items))
	}
	for _, c := range gen.Commits {
		for _, e := range c.Events {
			if p, ok := e.Payload.(events.CustomerProfiled); ok && len(p.Accounts) == 0 {
				found, _ := m.FindCustomers(ctx, p.RealNameFingerprint, "")
				for _, r := range found.Items {
					if r.Accounts == nil {
						t.Fatalf("customer %s: accounts null, want []", r.CustomerNo)
					}
				}
			}
		}
	}
}
