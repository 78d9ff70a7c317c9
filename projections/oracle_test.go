package projections

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

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
}

func newOracle() *oracle {
	return &oracle{errors: map[string][2]int{}, regs: map[string]map[string]bool{}, accident: map[string]map[string]bool{},
		branchRec: map[string]bool{}, pending: map[uuid.UUID]bool{}, media: map[string]map[string]bool{}}
}

func set[K comparable, V any](m map[string]map[K]V, k string, kk K, v V) {
	if m[k] == nil {
		m[k] = map[K]V{}
	}
	m[k][kk] = v
}

func (o *oracle) event(e events.Event) {
	key := e.Aggregate.Key
	// R-APPROVAL: branch events wait, except approvals, profiles and the
	// customer's copy of a home registration or cancellation.
	copyOfDevice := e.Aggregate.Kind == events.KindCustomer && (e.Type() == events.TypeRegistered || e.Type() == events.TypeCancelled)
	if e.Channel == events.ChannelBranch && e.Type() != events.TypeApproved && e.Type() != events.TypeCustomerProfiled && !copyOfDevice {
		o.pending[e.ID] = true
	}
	switch p := e.Payload.(type) {
	case events.Approved:
		delete(o.pending, p.EventID)
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
		if !ok || [2]int{e.Count, locked} != want {
			t.Errorf("%s error count %d locked %v, oracle %v", dev, e.Count, e.Locked, want)
		}
		rows, _, _ := m.DeviceInstitutions(ctx, vendor, serial)
		got := map[string]string{}
		for _, r := range rows {
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
		rows, _, _, _ := m.CustomerMedia(ctx, no, "", Page{Limit: MaxLimit})
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
		rows, next, _, err := m.PendingApprovals(ctx, Page{Limit: MaxLimit, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range rows {
			pending = append(pending, a.EventID)
		}
		if cursor = next; next == "" {
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
