package projections

import (
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otpledger/otpledger/events"
)

// table is one PostgreSQL table of the views: its name, the key an insert
// may conflict on, and its columns in the order its row function gives
// them. The live projector's inserts (queue), the rebuild's COPY (export)
// and the queries' SELECT lists all read these, so each column is named
// once.
type table[T any] struct {
	name    string
	key     []string // an insert of a stored key updates every other column; nil: it keeps the stored row
	columns []string
	row     func(T) []any
	insert  string // the statement queue sends, from the above
}

func newTable[T any](name string, key []string, columns []string, row func(T) []any) *table[T] {
	t := &table[T]{name: name, key: key, columns: columns, row: row}
	marks := make([]string, len(columns))
	for i := range marks {
		marks[i] = "$" + strconv.Itoa(i+1)
	}
	t.insert = "INSERT INTO proj." + name + " (" + t.list() + ") VALUES (" + strings.Join(marks, ", ") + ") ON CONFLICT "
	if key == nil {
		t.insert += "DO NOTHING"
		return t
	}
	var set []string
	for _, c := range columns {
		if !slices.Contains(key, c) {
			set = append(set, c+" = EXCLUDED."+c)
		}
	}
	t.insert += "(" + strings.Join(key, ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
	return t
}

// list returns the columns for a SELECT, each qualified with alias when
// one is given.
func (t *table[T]) list(alias ...string) string {
	if len(alias) == 0 {
		return strings.Join(t.columns, ", ")
	}
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = alias[0] + "." + c
	}
	return strings.Join(cols, ", ")
}

// copyRows returns the rows of a COPY into t.
func (t *table[T]) copyRows(rows iter.Seq[T]) copyTable {
	out := copyTable{name: t.name, columns: t.columns}
	for r := range rows {
		out.rows = append(out.rows, t.row(r))
	}
	return out
}

// The views' tables (schema/migrations).
var (
	customersTable = newTable("customers", []string{"customer_no"},
		[]string{"customer_no", "customer_type", "nationality", "real_name_fp", "real_name_masked", "accounts", "updated_seq"},
		func(r Customer) []any {
			return []any{r.CustomerNo, r.Type, r.Nationality, r.RealNameFP, r.RealNameMasked, r.Accounts, r.UpdatedSeq}
		})
	customerDevicesTable = newTable("customer_devices", []string{"customer_no", "kind", "medium_id"},
		[]string{"customer_no", "kind", "medium_id", "status", "since", "ended_at", "updated_seq"},
		func(r CustomerDevice) []any {
			return []any{r.CustomerNo, r.Kind, r.MediumID, r.Status, r.Since, r.EndedAt, r.UpdatedSeq}
		})
	mediaTable = newTable("customer_media", nil,
		[]string{"customer_no", "seq", "idx", "kind", "medium_id", "generator_number", "issue_status", "institution", "channel",
			"issued_at", "ended_at", "end_reason"},
		func(r Media) []any {
			return []any{r.CustomerNo, r.Seq, r.Idx, r.Kind, r.MediumID, r.GeneratorNumber, r.IssueStatus, r.Institution, r.Channel,
				r.IssuedAt, r.EndedAt, r.EndReason}
		})
	institutionsTable = newTable("device_institutions", []string{"vendor", "serial", "institution"},
		[]string{"vendor", "serial", "institution", "customer_no", "registered_at", "ended_at", "cancel_reason", "warranty_from",
			"warranty_to", "in_accident", "accident_since", "recovered_at", "recovered_in_branch", "updated_seq"},
		func(r Institution) []any {
			return []any{r.Vendor, r.Serial, r.Institution, r.CustomerNo, r.RegisteredAt, r.EndedAt, r.CancelReason, r.WarrantyFrom,
				r.WarrantyTo, r.InAccident, r.AccidentSince, r.RecoveredAt, r.RecoveredInBranch, r.UpdatedSeq}
		})
	historyTable = newTable("device_history", nil,
		[]string{"vendor", "serial", "seq", "idx", "event_id", "type", "occurred_at", "recorded_at", "institution", "channel",
			"origin_channel", "actor_role", "actor_id", "principal_id", "principal_role", "principal_method", "staff", "documents",
			"approved_by", "approved_at", "payload"},
		func(h History) []any { r := newHistoryRecord(h); return r.values() })
	// The error count's insert is its own (errorsUpsert): it leaves
	// branch_recovered, which SetBranchRecovered keeps, and keeps the last
	// times an increment or a reset did not set.
	errorsTable = newTable("device_errors", []string{"vendor", "serial"},
		[]string{"vendor", "serial", "count", "locked", "last_error_at", "last_reset_at", "branch_recovered", "updated_seq"},
		func(r Errors) []any {
			return []any{r.Vendor, r.Serial, r.Count, r.Locked, r.LastErrorAt, r.LastResetAt, r.BranchRecovered, r.UpdatedSeq}
		})
	mobileTable = newTable("mobile_otps", []string{"customer_no"},
		[]string{"customer_no", "generator_no", "phone_masked", "issued_at", "valid_until", "errors", "locked", "last_error_at",
			"last_reset_at", "updated_seq"},
		func(r Mobile) []any {
			return []any{r.CustomerNo, r.GeneratorNo, r.PhoneMasked, r.IssuedAt, r.ValidUntil, r.Errors, r.Locked, r.LastErrorAt,
				r.LastResetAt, r.UpdatedSeq}
		})
	approvalsTable = newTable("pending_approvals", nil,
		[]string{"event_id", "seq", "idx", "aggregate_kind", "aggregate_key", "type", "institution", "staff", "occurred_at"},
		func(r Approval) []any {
			return []any{r.EventID, r.Seq, r.Idx, r.AggregateKind, r.AggregateKey, r.Type, r.Institution, r.Staff, r.OccurredAt}
		})
	quarantineTable = newTable("quarantine", nil, []string{"seq", "subject", "error"},
		func(r Quarantined) []any { return []any{r.Seq, r.Subject, r.Error} })
)

// historyRecord is a history row as its table holds it: the actor,
// principal and approval flattened, the payload as text.
type historyRecord struct {
	History
	ActorRole       string     `db:"actor_role"`
	ActorID         string     `db:"actor_id"`
	PrincipalID     string     `db:"principal_id"`
	PrincipalRole   string     `db:"principal_role"`
	PrincipalMethod string     `db:"principal_method"`
	ApprovedBy      string     `db:"approved_by"`
	ApprovedAt      *time.Time `db:"approved_at"`
	PayloadText     string     `db:"payload"`
}

func newHistoryRecord(h History) historyRecord {
	r := historyRecord{History: h, ActorRole: string(h.Actor.Role), ActorID: h.Actor.ID, PayloadText: string(h.Payload)}
	if p := h.Principal; p != nil {
		r.PrincipalID, r.PrincipalRole, r.PrincipalMethod = p.ID, string(p.Role), string(p.Method)
	}
	if a := h.Approval; a != nil {
		r.ApprovedBy, r.ApprovedAt = a.Approver, &a.ApprovedAt
	}
	return r
}

// values returns the record's values in the order of historyTable's columns.
func (r historyRecord) values() []any {
	h := r.History
	return []any{h.Vendor, h.Serial, h.Seq, h.Idx, h.EventID, h.Type, h.OccurredAt, h.RecordedAt, h.Institution, h.Channel,
		h.OriginChannel, r.ActorRole, r.ActorID, r.PrincipalID, r.PrincipalRole, r.PrincipalMethod, h.Staff, h.Documents,
		r.ApprovedBy, r.ApprovedAt, r.PayloadText}
}

// history returns the row the record holds.
func (r historyRecord) history() History {
	h := r.History
	h.Actor = events.Actor{Role: events.Role(r.ActorRole), ID: r.ActorID}
	h.Payload = []byte(r.PayloadText)
	if r.PrincipalID != "" {
		h.Principal = &events.Principal{ID: r.PrincipalID, Role: events.PrincipalRole(r.PrincipalRole), Method: events.AuthMethod(r.PrincipalMethod)}
	}
	if r.ApprovedBy != "" && r.ApprovedAt != nil {
		h.Approval = &HistoryApproval{Approver: r.ApprovedBy, ApprovedAt: *r.ApprovedAt}
	}
	return h
}
