package projections

import (
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"

	"github.com/google/uuid"
)

// SnapshotFormat names the encoding of a memory snapshot; a snapshot of
// another format is not read.
const SnapshotFormat = "otpledger-views-gob-4"

// snapshotTables is the tables' rows as gob encodes them: flat lists, from
// which the maps are rebuilt (gob decodes maps, nested ones above all,
// several times slower than lists: 1.4 s of a 2.5 s load at a million
// events, before they were lists).
type snapshotTables struct {
	Seq         uint64
	Customers   []Customer
	CustDevices []CustomerDevice
	Media       []Media // each customer's in order
	Insts       []Institution
	Errors      []Errors
	Mobile      []Mobile
	Approvals   []Approval
	Quarantine  []Quarantined
}

// snapshotHistory is a device's history log as a snapshot holds it: its
// bytes as they are (its index is rebuilt on reading). The logs follow the
// tables in chunks of historyChunk, an empty chunk last: gob reads each
// value whole into one buffer, and one value of every log (150 MB at a
// million events) cost seconds of copying as that buffer grew.
type snapshotHistory struct {
	Key, Vendor, Serial string
	Data                []byte
}

const historyChunk = 1024

// ErrSnapshot is returned for a snapshot that is not the one its header
// describes (cut short, altered, another format).
var ErrSnapshot = errors.New("projections: snapshot does not match its header")

// WriteSnapshot encodes the store's views to w and returns their position
// and the SHA-256 of what it wrote (for the header that vouches for it).
func (m *Memory) WriteSnapshot(w io.Writer) (position uint64, sum [32]byte, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.t
	h := sha256.New()
	enc := gob.NewEncoder(io.MultiWriter(w, h))
	err = enc.Encode(snapshotTables{Seq: t.seq, Customers: slices.Collect(maps.Values(t.customers)),
		CustDevices: slices.Collect(nested(t.custDevices)), Media: slices.Collect(flat(t.media)), Insts: slices.Collect(nested(t.insts)),
		Errors: slices.Collect(maps.Values(t.errors)), Mobile: slices.Collect(maps.Values(t.mobile)),
		Approvals: slices.Collect(maps.Values(t.approvals)), Quarantine: t.quarantine})
	chunk := make([]snapshotHistory, 0, historyChunk)
	for k, l := range t.history {
		if err != nil {
			break
		}
		if chunk = append(chunk, snapshotHistory{Key: k, Vendor: l.vendor, Serial: l.serial, Data: l.data}); len(chunk) == historyChunk {
			err, chunk = enc.Encode(chunk), chunk[:0]
		}
	}
	if err == nil && len(chunk) > 0 {
		err = enc.Encode(chunk)
	}
	if err == nil {
		err = enc.Encode([]snapshotHistory{}) // the end
	}
	if err != nil {
		return 0, sum, fmt.Errorf("write snapshot: %w", err)
	}
	copy(sum[:], h.Sum(nil))
	return t.seq, sum, nil
}

// ReadSnapshot decodes a snapshot written by [Memory.WriteSnapshot] and
// returns it as a store, or [ErrSnapshot] when its content does not hash to
// sum or its position is not position.
func ReadSnapshot(r io.Reader, position uint64, sum [32]byte) (*Memory, error) {
	h := sha256.New()
	var st snapshotTables
	dec := gob.NewDecoder(io.TeeReader(r, h))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	history := map[string]*historyLog{}
	for {
		var chunk []snapshotHistory
		if err := dec.Decode(&chunk); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
		}
		if len(chunk) == 0 {
			break
		}
		for _, sh := range chunk {
			l := &historyLog{vendor: sh.Vendor, serial: sh.Serial, data: sh.Data}
			if err := l.index(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
			}
			history[sh.Key] = l
		}
	}
	if _, err := io.Copy(h, r); err != nil { // anything after the encoding counts too
		return nil, fmt.Errorf("%w: %w", ErrSnapshot, err)
	}
	if !matches(h, sum) || st.Seq != position {
		return nil, fmt.Errorf("%w: content or position altered", ErrSnapshot)
	}
	t := st.tables()
	t.history = history
	return &Memory{t: t}, nil
}

// tables rebuilds the maps from the lists.
func (st *snapshotTables) tables() *tables {
	t := newTables()
	t.seq, t.quarantine = st.Seq, st.Quarantine
	t.customers, t.errors = make(map[string]Customer, len(st.Customers)), make(map[string]Errors, len(st.Errors))
	t.mobile, t.approvals = make(map[string]Mobile, len(st.Mobile)), make(map[uuid.UUID]Approval, len(st.Approvals))
	for _, c := range st.Customers {
		if c.Accounts == nil {
			c.Accounts = []string{} // gob decodes an empty list as nil; the API answers []
		}
		t.customers[c.CustomerNo] = c
	}
	for _, r := range st.CustDevices {
		t.changeCustomer(PutCustomerDevice{r})
	}
	for _, r := range st.Media {
		t.media[r.CustomerNo] = append(t.media[r.CustomerNo], r)
	}
	for _, r := range st.Insts {
		t.changeDevice(PutInstitution{r}) // and the index by institution
	}
	for _, r := range st.Errors {
		t.errors[devKey(r.Vendor, r.Serial)] = r
	}
	for _, r := range st.Mobile {
		t.mobile[r.CustomerNo] = r
	}
	for _, r := range st.Approvals {
		t.approvals[r.EventID] = r
	}
	return t
}

func matches(h hash.Hash, sum [32]byte) bool {
	var got [32]byte
	copy(got[:], h.Sum(nil))
	return got == sum
}
