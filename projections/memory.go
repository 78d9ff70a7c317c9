package projections

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// tables is the memory store's data: one value per view, replaced whole by
// a rebuild.
type tables struct {
	seq         uint64
	customers   map[string]Customer
	custDevices map[string]map[string]CustomerDevice // customer → kind/medium → row
	media       map[string][]Media
	insts       map[string]map[string]Institution // device key → institution → row
	byInst      map[string]map[string]bool        // institution → device keys
	history     map[string]*historyLog            // device key → its rows, encoded
	errors      map[string]Errors
	mobile      map[string]Mobile
	approvals   map[uuid.UUID]Approval
	quarantine  []Quarantined
	// sink, when set, takes the history instead of history (a [Build]).
	sink historySink
}

// historySink takes the history rows a fold produces, and their approvals,
// instead of the tables.
type historySink interface {
	add(History)
	approve(ApproveHistory)
}

func newTables() *tables {
	return &tables{customers: map[string]Customer{}, custDevices: map[string]map[string]CustomerDevice{},
		media: map[string][]Media{}, insts: map[string]map[string]Institution{}, byInst: map[string]map[string]bool{},
		history: map[string]*historyLog{}, errors: map[string]Errors{}, mobile: map[string]Mobile{}, approvals: map[uuid.UUID]Approval{}}
}

// Memory is the in-memory projection store of the embedded default, rebuilt
// from the stream at start. It is safe for concurrent use; every answer is
// taken under one read lock, so it reflects exactly the position it reports.
type Memory struct {
	mu sync.RWMutex
	t  *tables
}

// NewMemory returns an empty memory store at position 0.
func NewMemory() *Memory { return &Memory{t: newTables()} }

func devKey(vendor, serial string) string { return vendor + "." + serial }

// Apply applies items above the checkpoint, in order; it returns [ErrGap]
// (applying nothing) when they do not follow the checkpoint.
func (m *Memory) Apply(_ context.Context, items []Item) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := m.t.seq + 1
	for _, it := range items {
		if it.Seq > next {
			return fmt.Errorf("apply %d after checkpoint %d: %w", it.Seq, m.t.seq, ErrGap)
		}
		next = max(next, it.Seq+1)
	}
	for _, it := range items {
		m.t.apply(it)
	}
	return nil
}

// Replace makes built's content m's, atomically for readers: under m's write
// lock, it applies to built what the stream holds after built's position
// (through catchUp), then swaps. built must not be used afterwards.
func (m *Memory) Replace(ctx context.Context, built *Memory, catchUp CatchUp) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	built.mu.Lock()
	defer built.mu.Unlock()
	err := catchUp(ctx, built.t.seq, func(items []Item) error {
		for _, it := range items {
			built.t.apply(it)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild: catch up: %w", err)
	}
	m.t = built.t
	return nil
}

func (t *tables) apply(it Item) {
	if it.Seq <= t.seq {
		return
	}
	t.seq = it.Seq
	if it.Err != nil {
		t.quarantine = append(t.quarantine, Quarantined{Seq: it.Seq, Subject: it.Subject, Error: it.Err.Error()})
		return
	}
	for _, c := range it.Changes() {
		t.change(c)
	}
}

// change makes one row change in the tables.
func (t *tables) change(c Change) {
	if !t.changeCustomer(c) {
		t.changeDevice(c)
	}
}

// changeCustomer makes the changes of the customer-side views: customers,
// their media and mobile OTPs, the approvals queue. It reports whether c was
// one of them.
func (t *tables) changeCustomer(c Change) bool {
	switch c := c.(type) {
	case PutCustomer:
		t.customers[c.Row.CustomerNo] = c.Row
	case PutCustomerDevice:
		rows := t.custDevices[c.Row.CustomerNo]
		if rows == nil {
			rows = map[string]CustomerDevice{}
			t.custDevices[c.Row.CustomerNo] = rows
		}
		rows[c.Row.Kind+"/"+c.Row.MediumID] = c.Row
	case EndCustomerDevice:
		if row, ok := t.custDevices[c.CustomerNo][c.Kind+"/"+c.MediumID]; ok {
			at := c.At
			row.Status, row.EndedAt, row.UpdatedSeq = c.Status, &at, c.Seq
			t.custDevices[c.CustomerNo][c.Kind+"/"+c.MediumID] = row
		}
	case AddMedia:
		t.media[c.Row.CustomerNo] = append(t.media[c.Row.CustomerNo], c.Row)
	case EndMedia:
		rows := t.media[c.CustomerNo]
		i := slices.IndexFunc(rows, func(m Media) bool { return m.Kind == c.Kind && m.MediumID == c.MediumID && m.EndedAt == nil })
		if i >= 0 {
			at := c.At
			rows[i].IssueStatus, rows[i].EndedAt, rows[i].EndReason = IssueStatusEnded, &at, c.Reason
		}
	case PutMobile:
		t.mobile[c.Row.CustomerNo] = c.Row
	case SetMobileErrors:
		if row, ok := t.mobile[c.CustomerNo]; ok {
			row.Errors, row.Locked, row.UpdatedSeq = c.Errors, c.Locked, c.Seq
			if c.LastErrorAt != nil {
				row.LastErrorAt = c.LastErrorAt
			}
			if c.LastResetAt != nil {
				row.LastResetAt = c.LastResetAt
			}
			t.mobile[c.CustomerNo] = row
		}
	case DeleteMobile:
		delete(t.mobile, c.CustomerNo)
	case PutApproval:
		t.approvals[c.Row.EventID] = c.Row
	case DeleteApproval:
		delete(t.approvals, c.EventID)
	default:
		return false
	}
	return true
}

// changeDevice makes the changes of the device-side views: institutions,
// history, error counts. It reports whether c was one of them.
func (t *tables) changeDevice(c Change) bool {
	switch c := c.(type) {
	case PutInstitution:
		k := devKey(c.Row.Vendor, c.Row.Serial)
		if t.insts[k] == nil {
			t.insts[k] = map[string]Institution{}
		}
		t.insts[k][c.Row.Institution] = c.Row
		if t.byInst[c.Row.Institution] == nil {
			t.byInst[c.Row.Institution] = map[string]bool{}
		}
		t.byInst[c.Row.Institution][k] = true
	case EndInstitution:
		t.institution(c.Vendor, c.Serial, c.Institution, func(row *Institution) {
			at := c.At
			row.EndedAt, row.CancelReason, row.UpdatedSeq = &at, c.Reason, c.Seq
		})
	case SetAccident:
		t.institution(c.Vendor, c.Serial, c.Institution, func(row *Institution) {
			if !row.InAccident {
				since := c.Since
				row.InAccident, row.AccidentSince = true, &since
			}
			row.UpdatedSeq = c.Seq
		})
	case RecoverInstitution:
		t.institution(c.Vendor, c.Serial, c.Institution, func(row *Institution) {
			at := c.At
			row.InAccident, row.AccidentSince, row.RecoveredAt, row.RecoveredInBranch, row.UpdatedSeq = false, nil, &at, c.InBranch, c.Seq
		})
	case SetBranchRecovered:
		k := devKey(c.Vendor, c.Serial)
		if row, ok := t.errors[k]; ok {
			row.BranchRecovered, row.UpdatedSeq = c.Value, c.Seq
			t.errors[k] = row
		}
	case AddHistory:
		if t.sink != nil {
			t.sink.add(c.Row)
			break
		}
		k := devKey(c.Row.Vendor, c.Row.Serial)
		l := t.history[k]
		if l == nil {
			l = &historyLog{vendor: c.Row.Vendor, serial: c.Row.Serial}
			t.history[k] = l
		}
		l.append(&c.Row)
	case ApproveHistory:
		if t.sink != nil {
			t.sink.approve(c)
			break
		}
		if l := t.history[devKey(c.Vendor, c.Serial)]; l != nil {
			l.approve(c.EventID, c.Approval)
		}
	case EnsureErrors:
		k := devKey(c.Vendor, c.Serial)
		if _, ok := t.errors[k]; !ok {
			t.errors[k] = Errors{Vendor: c.Vendor, Serial: c.Serial, UpdatedSeq: c.Seq}
		}
	case SetErrors:
		k := devKey(c.Row.Vendor, c.Row.Serial)
		row := t.errors[k]
		row.Vendor, row.Serial, row.Count, row.Locked, row.UpdatedSeq = c.Row.Vendor, c.Row.Serial, c.Row.Count, c.Row.Locked, c.Row.UpdatedSeq
		if c.Row.LastErrorAt != nil {
			row.LastErrorAt = c.Row.LastErrorAt
		}
		if c.Row.LastResetAt != nil {
			row.LastResetAt = c.Row.LastResetAt
		}
		t.errors[k] = row
	default:
		return false
	}
	return true
}

// institution changes a device's registration row at inst, if there is one.
func (t *tables) institution(vendor, serial, inst string, change func(*Institution)) {
	k := devKey(vendor, serial)
	if row, ok := t.insts[k][inst]; ok {
		change(&row)
		t.insts[k][inst] = row
	}
}

func (m *Memory) read() (*tables, func()) {
	m.mu.RLock()
	return m.t, m.mu.RUnlock
}

// Position returns the checkpoint: the last stream sequence applied.
func (m *Memory) Position(context.Context) (uint64, error) {
	t, done := m.read()
	defer done()
	return t.seq, nil
}

// FindCustomers finds customers by real-name fingerprint or account number.
func (m *Memory) FindCustomers(_ context.Context, fp, account string) (List[Customer], error) {
	t, done := m.read()
	defer done()
	var out []Customer
	for _, c := range t.customers {
		if (fp != "" && c.RealNameFP == fp) || (account != "" && slices.Contains(c.Accounts, account)) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Customer) int { return strings.Compare(a.CustomerNo, b.CustomerNo) })
	return newList(out, "", t.seq), nil
}

// CustomerDevices lists the customer's media, hardware first, by medium id,
// each with its teller status at time at.
func (m *Memory) CustomerDevices(_ context.Context, no string, at time.Time) (List[CustomerDevice], error) {
	t, done := m.read()
	defer done()
	out := make([]CustomerDevice, 0, len(t.custDevices[no]))
	for _, r := range t.custDevices[no] {
		var st mediumState
		switch r.Kind {
		case KindHardware:
			st.locked = t.errors[r.MediumID].Locked
			for _, i := range t.insts[r.MediumID] {
				if i.InAccident {
					st.accidentAt = append(st.accidentAt, i.Institution)
				}
				if i.CustomerNo == no && i.Active() {
					st.warrantyTo = i.WarrantyTo
				}
			}
			slices.Sort(st.accidentAt)
		case KindMobile:
			if mob, ok := t.mobile[no]; ok && mob.GeneratorNo == r.MediumID {
				until := mob.ValidUntil
				st.locked, st.validUntil = mob.Locked, &until
			}
		}
		r.settle(st, at)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b CustomerDevice) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.MediumID, b.MediumID))
	})
	return newList(out, "", t.seq), nil
}

// CustomerMedia pages the customer's media history, oldest first, of one
// kind ("" for both).
func (m *Memory) CustomerMedia(_ context.Context, no, kind string, p Page) (List[Media], error) {
	after, err := parseSeqCursor(p.Cursor)
	if err != nil {
		return List[Media]{}, err
	}
	t, done := m.read()
	defer done()
	rows := t.media[no]
	if kind != "" {
		rows = slices.DeleteFunc(slices.Clone(rows), func(r Media) bool { return r.Kind != kind })
	}
	out, next := pageBySeq(rows, after, p.limit(), func(r Media) (uint64, int) { return r.Seq, r.Idx })
	return newList(out, next, t.seq), nil
}

// DeviceInstitutions lists the device's registrations by institution.
func (m *Memory) DeviceInstitutions(_ context.Context, vendor, serial string) (List[Institution], error) {
	t, done := m.read()
	defer done()
	k := devKey(vendor, serial)
	out := make([]Institution, 0, len(t.insts[k]))
	for _, r := range t.insts[k] {
		r.BranchRecovered = t.errors[k].BranchRecovered
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Institution) int { return strings.Compare(a.Institution, b.Institution) })
	return newList(out, "", t.seq), nil
}

// DeviceHistory pages the device's events, oldest first.
func (m *Memory) DeviceHistory(_ context.Context, vendor, serial string, p Page) (List[History], error) {
	after, err := parseSeqCursor(p.Cursor)
	if err != nil {
		return List[History]{}, err
	}
	t, done := m.read()
	defer done()
	l := t.history[devKey(vendor, serial)]
	if l == nil {
		return newList([]History(nil), "", t.seq), nil
	}
	refs, next := pageBySeq(l.refs, after, p.limit(), func(r historyRef) (uint64, int) { return r.seq, int(r.idx) })
	rows := make([]History, len(refs))
	for i, r := range refs {
		rows[i] = l.at(r)
	}
	return newList(rows, next, t.seq), nil
}

// pageBySeq pages rows kept in (seq, idx) order.
func pageBySeq[T any](rows []T, after seqCursor, limit int, key func(T) (uint64, int)) ([]T, string) {
	start, _ := slices.BinarySearchFunc(rows, after, func(r T, c seqCursor) int {
		s, i := key(r)
		if c.before(s, i) {
			return 1
		}
		return -1
	})
	end := min(len(rows), start+limit+1)
	return cut(slices.Clone(rows[start:end]), limit, func(r T) string { s, i := key(r); return seqCursor{s, i}.String() })
}

// DeviceErrors returns the device's error count.
func (m *Memory) DeviceErrors(_ context.Context, vendor, serial string) (Errors, bool, uint64, error) {
	t, done := m.read()
	defer done()
	r, ok := t.errors[devKey(vendor, serial)]
	return r, ok, t.seq, nil
}

// MobileOTP returns the customer's active mobile OTP with its status at time at.
func (m *Memory) MobileOTP(_ context.Context, no string, at time.Time) (Mobile, bool, uint64, error) {
	t, done := m.read()
	defer done()
	r, ok := t.mobile[no]
	if ok {
		r.settle(at)
	}
	return r, ok, t.seq, nil
}

// InstitutionDevices pages the devices registered at institution, by device.
func (m *Memory) InstitutionDevices(_ context.Context, inst string, status Status, p Page) (List[InstitutionDevice], error) {
	t, done := m.read()
	defer done()
	keys := make([]string, 0, len(t.byInst[inst]))
	for k := range t.byInst[inst] {
		if k > p.Cursor {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []InstitutionDevice
	for _, k := range keys {
		r := t.insts[k][inst]
		e := t.errors[k]
		r.BranchRecovered = e.BranchRecovered
		if !r.Active() || (status == StatusInAccident && !r.InAccident) || (status == StatusLocked && !e.Locked) {
			continue
		}
		out = append(out, InstitutionDevice{Institution: r, Count: e.Count, Locked: e.Locked})
		if len(out) > p.limit() {
			break
		}
	}
	rows, next := cut(out, p.limit(), func(r InstitutionDevice) string { return devKey(r.Vendor, r.Serial) })
	return newList(rows, next, t.seq), nil
}

// PendingApprovals pages the branch events awaiting approval, oldest first.
func (m *Memory) PendingApprovals(_ context.Context, p Page) (List[Approval], error) {
	after, err := parseSeqCursor(p.Cursor)
	if err != nil {
		return List[Approval]{}, err
	}
	t, done := m.read()
	defer done()
	var out []Approval
	for _, a := range t.approvals {
		if after.before(a.Seq, a.Idx) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Approval) int { return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Idx, b.Idx)) })
	rows, next := cut(out, p.limit(), func(a Approval) string { return seqCursor{a.Seq, a.Idx}.String() })
	return newList(rows, next, t.seq), nil
}

// Quarantine lists the quarantined messages by sequence.
func (m *Memory) Quarantine(context.Context) ([]Quarantined, error) {
	t, done := m.read()
	defer done()
	return slices.Clone(t.quarantine), nil
}

// PendingApproval returns the pending approval of one event.
func (m *Memory) PendingApproval(_ context.Context, id uuid.UUID) (Approval, bool, uint64, error) {
	t, done := m.read()
	defer done()
	a, ok := t.approvals[id]
	return a, ok, t.seq, nil
}
