package aggregates

import (
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// Meta is what every command carries besides its own fields: who acts, where,
// how, and the ids the resulting events take. Deciders read no clock and draw
// no random ids: EventID and the decision time come from the caller.
type Meta struct {
	// EventID is the id of the command's first event; later events of the
	// same command take ids derived from it ([Meta.eventID]), so a retried
	// command yields the same ids.
	EventID        uuid.UUID
	Institution    string
	Channel        events.Channel
	OriginChannel  events.OriginChannel // channel CENTER only
	Actor          events.Actor
	Staff          string            // employee processing a branch action (R-APPROVAL)
	Principal      *events.Principal // the authenticated caller the events record (nil: a Go caller without one)
	Documents      []events.Document
	OccurredAt     time.Time // channel CENTER only: the feed's own time; zero means now
	CorrelationID  string
	CausationID    string
	IdempotencyKey string
	// CustomerType is the acting customer's type for R-AGENT and R-DOCS on
	// device commands when no profile of that customer is on record ("" =
	// unknown, treated as an individual). A profile on record always
	// decides; customer commands read only the profile.
	CustomerType events.CustomerType
}

// eventID returns the id of the command's i-th event.
func (m Meta) eventID(i int) uuid.UUID {
	if i == 0 {
		return m.EventID
	}
	return uuid.NewSHA1(m.EventID, []byte{byte(i)})
}

func (m Meta) validate(p *Policy) error {
	switch {
	case m.EventID == uuid.Nil:
		return &events.FieldError{Field: "id", Reason: "required"}
	case !events.ValidInstitution(m.Institution):
		return events.InstitutionCode.Refusal("institution")
	case !m.Channel.Valid():
		return &events.FieldError{Field: "channel", Reason: "unknown channel"}
	case !m.Actor.Role.Valid():
		return &events.FieldError{Field: "actor.role", Reason: "unknown role"}
	case m.OriginChannel != "" && m.Channel != events.ChannelCenter:
		return &events.FieldError{Field: "origin_channel", Reason: "allowed with channel CENTER only"}
	case !m.OriginChannel.Valid():
		return &events.FieldError{Field: "origin_channel", Reason: "must be BRANCH or ONLINE"}
	case !m.OccurredAt.IsZero() && m.Channel != events.ChannelCenter:
		return &events.FieldError{Field: "occurred_at", Reason: "only channel CENTER sends its own time"}
	case m.Channel == events.ChannelBranch && m.Staff == "":
		return &events.FieldError{Field: "staff", Reason: "required for branch actions"}
	}
	return nil
}

// envelope builds the i-th event of the command for aggregate ref.
func (m Meta) envelope(i int, ref events.AggregateRef, now time.Time, p events.Payload) events.Event {
	occurred := now
	if !m.OccurredAt.IsZero() {
		occurred = m.OccurredAt
	}
	return events.Event{
		ID: m.eventID(i), OccurredAt: occurred.UTC(), RecordedAt: now.UTC(), Aggregate: ref,
		Institution: m.Institution, Channel: m.Channel, OriginChannel: m.OriginChannel, Actor: m.Actor,
		Staff: m.Staff, Principal: m.Principal, Documents: m.Documents, CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		IdempotencyKey: m.IdempotencyKey, Payload: p,
	}
}

// inBranch reports whether the action was taken in person: in the home
// institution's branch, or at another institution's branch per the feed.
func (m Meta) inBranch() bool {
	return m.Channel == events.ChannelBranch || (m.Channel == events.ChannelCenter && m.OriginChannel == events.OriginBranch)
}

// customerMade reports whether the action is the customer's own (in branch,
// by phone or online), not a report of the centre feed or the
// authentication service.
func (m Meta) customerMade() bool {
	return m.Channel != events.ChannelCenter && m.Channel != events.ChannelAuth
}

// online reports whether the action was taken on an online channel, here or,
// per the feed, at another institution.
func (m Meta) online() bool {
	return m.Channel.Online() || (m.Channel == events.ChannelCenter && m.OriginChannel == events.OriginOnline)
}

// validated returns evs when every event is valid, or the first event's
// problem; it keeps a malformed fact out of the journal whatever the command.
func validated(evs []events.Event) ([]events.Event, error) {
	for _, e := range evs {
		if err := e.Validate(); err != nil {
			return nil, err
		}
	}
	return evs, nil
}

// Metadata returns the command's [Meta]; every command has it by embedding.
func (m Meta) Metadata() Meta { return m }

// WithMeta returns cmd with its Meta replaced by m and, for a command that
// carries a customer's state, that state set to c (nil leaves it).
func WithMeta(cmd DeviceCommand, m Meta, c *Customer) DeviceCommand {
	keep := func(old *Customer) *Customer {
		if c != nil {
			return c
		}
		return old
	}
	switch cmd := cmd.(type) {
	case Register:
		cmd.Meta, cmd.Customer = m, keep(cmd.Customer)
		return cmd
	case Cancel:
		cmd.Meta, cmd.Customer = m, keep(cmd.Customer)
		return cmd
	case ReportLoss:
		cmd.Meta, cmd.Customer = m, keep(cmd.Customer)
		return cmd
	case Recover:
		cmd.Meta, cmd.Customer = m, keep(cmd.Customer)
		return cmd
	case IncrementError:
		cmd.Meta = m
		return cmd
	case ResetErrors:
		cmd.Meta, cmd.Customer = m, keep(cmd.Customer)
		return cmd
	case Approve:
		cmd.Meta = m
		return cmd
	}
	return cmd
}

// WithCustomerMeta returns cmd with its Meta replaced by m.
func WithCustomerMeta(cmd CustomerCommand, m Meta) CustomerCommand {
	switch cmd := cmd.(type) {
	case SetProfile:
		cmd.Meta = m
		return cmd
	case IssueMobile:
		cmd.Meta = m
		return cmd
	case RevokeMobile:
		cmd.Meta = m
		return cmd
	case IncrementMobileError:
		cmd.Meta = m
		return cmd
	case ResetMobileErrors:
		cmd.Meta = m
		return cmd
	case Approve:
		cmd.Meta = m
		return cmd
	case ClaimRealName:
		cmd.Meta = m
		return cmd
	}
	return cmd
}
