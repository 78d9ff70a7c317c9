package journal

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrConflict is returned by [Journal.Append] when an aggregate's last
	// sequence is not the one expected: another writer appended first. Reload
	// and decide again.
	ErrConflict = errors.New("journal: aggregate changed since it was loaded")

	// ErrDuplicate is returned by [Journal.Append] when the server has already
	// stored a message with the same Nats-Msg-Id within the duplicate window:
	// the command was appended before. Nothing new is stored.
	ErrDuplicate = errors.New("journal: command already appended")

	// ErrNoJournal is returned by [Open] with Config.ReadOnly when the stream
	// does not exist: nothing was ever recorded there.
	ErrNoJournal = errors.New("journal: no such journal (nothing recorded)")

	// ErrUnreadable is returned by [Journal.Append] and [Bulk.Add] for a
	// commit whose encoding does not decode back to the same commit: it would
	// be acknowledged and then never read back, so it is never stored.
	ErrUnreadable = errors.New("journal: commit would not read back as written")

	// ErrUnavailable wraps every error of [Journal.Append] and the loads that
	// comes from the server or the connection rather than from the data: the
	// journal is down or unreachable. Nothing is known to have been appended.
	ErrUnavailable = errors.New("journal: unavailable")
	// ErrUndecodable: a stored message no decoder reads. It is the
	// stream's fault, never the caller's: a finding, not a refusal.
	ErrUndecodable = errors.New("journal: a stored message does not decode")
)

// DuplicateError is returned by [Journal.Append] for a single message whose
// Nats-Msg-Id the server had stored before: Seq is where the first one is.
// It matches [ErrDuplicate] with errors.Is.
type DuplicateError struct{ Seq uint64 }

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("%v (at sequence %d)", ErrDuplicate, e.Seq)
}

// Is makes a DuplicateError match ErrDuplicate.
func (e *DuplicateError) Is(target error) bool { return target == ErrDuplicate }

// JetStream error codes the journal interprets that the client library
// does not name: the server's JSAtomicPublishContainsDuplicateMessageErr and
// JSStreamDuplicateMessageConflict (TestServerErrorCodes checks them against
// the server's table).
const (
	codeBatchDuplicate     jetstream.ErrorCode = 10201
	codeDuplicateInProcess jetstream.ErrorCode = 10158
)

// classify maps a publish error to ErrConflict, ErrDuplicate or ErrUnavailable.
func classify(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return ErrConflict
		case codeBatchDuplicate, codeDuplicateInProcess:
			return ErrDuplicate
		}
	}
	var jsErr jetstream.JetStreamError
	if errors.As(err, &jsErr) && jsErr.APIError() != nil {
		return classify(jsErr.APIError())
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
