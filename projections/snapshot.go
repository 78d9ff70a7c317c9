package projections

import (
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/google/uuid"
)

// SnapshotFormat names the encoding of a memory snapshot; a snapshot of
// another format is not read.
const SnapshotFormat = "otpledger-views-gob-3"

// snapshotTables is the tables' content as gob encodes it.
type snapshotTables struct {
	Seq         uint64
	Customers   map[string]Customer
	CustDevices map[string]map[string]CustomerDevice
	Media       map[string][]Media
	Insts       map[string]map[string]Institution
	ByInst      map[string]map[string]bool
	Errors      map[string]Errors
	Mobile      map[string]Mobile
	Approvals   map[uuid.UUID]Approval
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
	err = enc.Encode(snapshotTables{Seq: t.seq, Customers: t.customers, CustDevices: t.custDevices,
		Media: t.media, Insts: t.insts, ByInst: t.byInst, Errors: t.errors, Mobile: t.mobile,
		Approvals: t.approvals, Quarantine: t.quarantine})
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
	t := newTables()
	t.seq = st.Seq
	fill(&t.customers, st.Customers)
	fill(&t.custDevices, st.CustDevices)
	fill(&t.media, st.Media)
	fill(&t.insts, st.Insts)
	fill(&t.byInst, st.ByInst)
	t.history = history
	fill(&t.errors, st.Errors)
	fill(&t.mobile, st.Mobile)
	fill(&t.approvals, st.Approvals)
	t.quarantine = st.Quarantine
	emptyNotNil(t)
	return &Memory{t: t}, nil
}

// emptyNotNil gives back the empty lists gob decodes as nil: the API
// answers [] for them, never null (as Apply writes them).
func emptyNotNil(t *tables) {
	for no, c := range t.customers {
		if c.Accounts == nil {
			c.Accounts = []string{}
			t.customers[no] = c
		}
	}
}

func matches(h hash.Hash, sum [32]byte) bool {
	var got [32]byte
	copy(got[:], h.Sum(nil))
	return got == sum
}

// fill sets *dst to src unless gob left it nil (an empty map).
func fill[M ~map[K]V, K comparable, V any](dst *M, src M) {
	if src != nil {
		*dst = src
	}
}
