package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// Item is one journal message for the projector: its stream sequence and
// subject, and its decoded commit or the reason it could not be decoded.
type Item struct {
	Seq     uint64
	Subject string
	Data    []byte // the message body as stored
	Commit  events.Commit
	Err     error // non-nil: the message is quarantined instead of applied
}

// Changes returns the row changes of every event of the item.
func (it Item) Changes() []Change {
	var out []Change
	for i, e := range it.Commit.Events {
		out = append(out, Apply(it.Seq, i, e)...)
	}
	return out
}

// Writer applies items to a store exactly once in effect: items at or below
// the store's checkpoint are skipped, and rows and checkpoint change together.
type Writer interface {
	Apply(ctx context.Context, items []Item) error
	Position(ctx context.Context) (uint64, error)
}

// Reader answers the inquiry screens; every answer carries the stream
// sequence it reflects. Both stores implement it with the same answers.
// Statuses that depend on the time (expired) are read at the given at.
type Reader interface {
	Position(ctx context.Context) (uint64, error)
	FindCustomers(ctx context.Context, realNameFP, accountNo string) (List[Customer], error)
	CustomerDevices(ctx context.Context, customerNo string, at time.Time) (List[CustomerDevice], error)
	CustomerMedia(ctx context.Context, customerNo, kind string, p Page) (List[Media], error)
	DeviceInstitutions(ctx context.Context, vendor, serial string) (List[Institution], error)
	DeviceHistory(ctx context.Context, vendor, serial string, p Page) (List[History], error)
	DeviceErrors(ctx context.Context, vendor, serial string) (Errors, bool, uint64, error)
	MobileOTP(ctx context.Context, customerNo string, at time.Time) (Mobile, bool, uint64, error)
	InstitutionDevices(ctx context.Context, institution string, status Status, p Page) (List[InstitutionDevice], error)
	PendingApprovals(ctx context.Context, p Page) (List[Approval], error)
	PendingApproval(ctx context.Context, eventID uuid.UUID) (Approval, bool, uint64, error)
	Quarantine(ctx context.Context) ([]Quarantined, error)
}

// List is a list query's answer (api.md): a page of rows, the cursor of the
// next page ("" when none follows) and the stream sequence it reflects.
type List[T any] struct {
	Items        []T    `json:"items"`
	NextCursor   string `json:"next_cursor,omitempty"`
	AsOfSequence uint64 `json:"as_of_sequence"`
}

// newList returns a List of items (never nil: an empty list is []).
func newList[T any](items []T, next string, seq uint64) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items, NextCursor: next, AsOfSequence: seq}
}

// Status filters the per-institution view.
type Status string

// Statuses of the per-institution view; "" lists every registration.
const (
	StatusAll        Status = ""
	StatusInAccident Status = "IN_ACCIDENT"
	StatusLocked     Status = "LOCKED"
)

// Page is a continuation request ("연속"): at most Limit rows after Cursor
// (empty: from the start).
type Page struct {
	Limit  int
	Cursor string
}

// ErrGap is returned by a store's Apply when the first item it has not yet
// applied is not the one right after its checkpoint: an item was skipped
// (or the database lost its last commits). Nothing is applied; the caller
// must read again from the checkpoint.
var ErrGap = errors.New("projections: items do not follow the checkpoint")

// ErrBadCursor is returned for a cursor that no answer produced.
var ErrBadCursor = errors.New("projections: malformed cursor")

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// seqCursor is the cursor of views ordered by (seq, idx).
type seqCursor struct {
	seq uint64
	idx int
}

func (c seqCursor) String() string { return strconv.FormatUint(c.seq, 10) + "-" + strconv.Itoa(c.idx) }

func parseSeqCursor(s string) (seqCursor, error) {
	if s == "" {
		return seqCursor{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	seq, err1 := strconv.ParseUint(a, 10, 64)
	idx, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || idx < 0 {
		return seqCursor{}, fmt.Errorf("%w: %q", ErrBadCursor, s)
	}
	return seqCursor{seq, idx}, nil
}

func (c seqCursor) before(seq uint64, idx int) bool {
	return seq > c.seq || (seq == c.seq && idx > c.idx)
}

// cut returns the first limit rows and, when more follow, the cursor of the
// last one returned.
func cut[T any](rows []T, limit int, cursor func(T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	return rows[:limit], cursor(rows[limit-1])
}
