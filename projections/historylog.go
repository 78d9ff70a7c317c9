package projections

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// historyLog is one device's history rows, encoded one after another in a
// single byte slice: pointer-free (the collector never scans it), a
// fraction of the rows' size as values, and written to a snapshot as it is.
// refs index it by (seq, idx) for paging. A log is changed only by append
// and by approve (rare: it re-encodes one row); readers decode the rows
// they answer.
type historyLog struct {
	vendor, serial string
	data           []byte
	refs           []historyRef
}

// historyRef places one row of a log.
type historyRef struct {
	seq uint64
	idx uint32
	off uint32 // where the row starts in data
}

// A row in a log is its length (4 bytes, little-endian) and its encoding.
const rowLen = 4

// append adds a row, which follows every row in the log.
func (l *historyLog) append(h *History) {
	off := len(l.data)
	l.refs = append(l.refs, historyRef{seq: h.Seq, idx: uint32(h.Idx), off: uint32(off)})
	l.data = encodeHistory(append(l.data, 0, 0, 0, 0), h)
	binary.LittleEndian.PutUint32(l.data[off:], uint32(len(l.data)-off-rowLen))
}

// at decodes the row r places.
func (l *historyLog) at(r historyRef) History {
	h, err := decodeHistory(l.body(r.off))
	if err != nil {
		// Only this package writes logs, and index checked every row of one read from a snapshot.
		panic(fmt.Sprintf("projections: history of %s.%s at sequence %d: %v", l.vendor, l.serial, r.seq, err))
	}
	h.Vendor, h.Serial = l.vendor, l.serial
	return h
}

// body is the encoding of the row at off.
func (l *historyLog) body(off uint32) []byte {
	n := binary.LittleEndian.Uint32(l.data[off:])
	return l.data[off+rowLen : off+rowLen+n]
}

// approve sets the approval of the row of event id, if the log holds it.
func (l *historyLog) approve(id uuid.UUID, a HistoryApproval) {
	for i, r := range l.refs {
		if uuid.UUID(l.body(r.off)[:16]) != id { // every row starts with its event id
			continue
		}
		h := l.at(r)
		h.Approval = &a
		start, end := r.off, r.off+rowLen+uint32(len(l.body(r.off)))
		var row historyLog
		row.append(&h)
		l.data = slices.Concat(l.data[:start], row.data, l.data[end:])
		shift := uint32(len(row.data)) - (end - start) // modulo 2³²: negative shifts too
		for j := i + 1; j < len(l.refs); j++ {
			l.refs[j].off += shift
		}
		return
	}
}

// index rebuilds refs from data (a log read from a snapshot), reading
// only each row's length, sequence and index.
func (l *historyLog) index() error {
	l.refs = l.refs[:0]
	for off := 0; off < len(l.data); {
		if off+rowLen > len(l.data) {
			return fmt.Errorf("history of %s.%s: cut short at byte %d", l.vendor, l.serial, off)
		}
		n := int(binary.LittleEndian.Uint32(l.data[off:]))
		if off+rowLen+n > len(l.data) || n < 16 {
			return fmt.Errorf("history of %s.%s: a row at byte %d runs past the end", l.vendor, l.serial, off)
		}
		d := decoder{b: l.data[off+rowLen : off+rowLen+n], off: 16}
		seq, idx := d.uvarint(), d.uvarint()
		if d.err != nil {
			return fmt.Errorf("history of %s.%s at byte %d: %w", l.vendor, l.serial, off, d.err)
		}
		l.refs = append(l.refs, historyRef{seq: seq, idx: uint32(idx), off: uint32(off)})
		off += rowLen + n
	}
	return nil
}

// encodeHistory appends a row's encoding: the event id (16 bytes, first: approve finds rows by
// it), then varints and length-prefixed strings in the order below; a time
// is its Unix seconds (signed) and nanoseconds; optional parts (principal,
// approval) have a presence byte.
func encodeHistory(b []byte, h *History) []byte {
	b = append(b, h.EventID[:]...)
	b = binary.AppendUvarint(b, h.Seq)
	b = binary.AppendUvarint(b, uint64(h.Idx))
	b = appendString(b, h.Type)
	b = appendTime(b, h.OccurredAt)
	b = appendTime(b, h.RecordedAt)
	b = appendString(b, h.Institution)
	b = appendString(b, h.Channel)
	b = appendString(b, h.OriginChannel)
	b = appendString(b, string(h.Actor.Role))
	b = appendString(b, h.Actor.ID)
	if p := h.Principal; p != nil {
		b = append(b, 1)
		b = appendString(b, p.ID)
		b = appendString(b, string(p.Role))
		b = appendString(b, string(p.Method))
	} else {
		b = append(b, 0)
	}
	b = appendString(b, h.Staff)
	b = binary.AppendUvarint(b, uint64(len(h.Documents)))
	for _, d := range h.Documents {
		b = appendString(b, d)
	}
	if a := h.Approval; a != nil {
		b = append(b, 1)
		b = appendString(b, a.Approver)
		b = appendTime(b, a.ApprovedAt)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(h.Payload)))
	return append(b, h.Payload...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// decodeHistory decodes a row's encoding.
func decodeHistory(b []byte) (History, error) {
	d := decoder{b: b}
	var h History
	copy(h.EventID[:], d.bytes(16))
	h.Seq = d.uvarint()
	h.Idx = int(d.uvarint())
	h.Type = d.string()
	h.OccurredAt = d.time()
	h.RecordedAt = d.time()
	h.Institution = d.string()
	h.Channel = d.string()
	h.OriginChannel = d.string()
	h.Actor = events.Actor{Role: events.Role(d.string()), ID: d.string()}
	if d.byte() == 1 {
		h.Principal = &events.Principal{ID: d.string(), Role: events.PrincipalRole(d.string()), Method: events.AuthMethod(d.string())}
	}
	h.Staff = d.string()
	h.Documents = make([]string, d.uvarint())
	for i := range h.Documents {
		h.Documents[i] = d.string()
	}
	if d.byte() == 1 {
		h.Approval = &HistoryApproval{Approver: d.string(), ApprovedAt: d.time()}
	}
	h.Payload = slices.Clone(d.bytes(int(d.uvarint())))
	if d.err == nil && d.off != len(d.b) {
		d.err = fmt.Errorf("history row: %d bytes left over", len(d.b)-d.off)
	}
	return h, d.err
}

// decoder reads what encodeHistory wrote; past the end or on a malformed
// varint it records an error and yields zero values.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("malformed history row at byte %d", d.off)
	}
	d.off = len(d.b)
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || d.off+n > len(d.b) {
		d.fail()
		return nil
	}
	out := d.b[d.off : d.off+n]
	d.off += n
	return out
}

func (d *decoder) byte() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) uvarint() uint64 { return readVarint(d, binary.Uvarint) }

func (d *decoder) varint() int64 { return readVarint(d, binary.Varint) }

// readVarint reads a varint with read (binary.Uvarint or binary.Varint).
func readVarint[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	v, n := read(d.b[d.off:])
	if n <= 0 {
		d.fail()
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string() string { return string(d.bytes(int(d.uvarint()))) }

func (d *decoder) time() time.Time {
	sec := d.varint()
	return time.Unix(sec, int64(d.uvarint())).UTC()
}
