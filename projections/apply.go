package projections

import (
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
)

// Change is one row change of a view. [Apply] produces them; each store
// (memory, PostgreSQL) carries them out with the same meaning.
type Change interface{ change() }

type (
	// PutCustomer inserts or replaces a customer.
	PutCustomer struct{ Row Customer }
	// PutCustomerDevice inserts or replaces a per-customer list row.
	PutCustomerDevice struct{ Row CustomerDevice }
	// EndCustomerDevice marks a per-customer list row cancelled or revoked.
	EndCustomerDevice struct {
		CustomerNo, Kind, MediumID, Status string
		At                                 time.Time
		Seq                                uint64
	}
	// AddMedia appends a medium issued or registered to the customer media history.
	AddMedia struct{ Row Media }
	// EndMedia ends the customer's medium still in force (2373 issue status).
	EndMedia struct {
		CustomerNo, Kind, MediumID, Reason string
		At                                 time.Time
	}
	// PutInstitution inserts or replaces a device's registration at an institution.
	PutInstitution struct{ Row Institution }
	// EndInstitution marks a device's registration at an institution cancelled.
	EndInstitution struct {
		Vendor, Serial, Institution, Reason string
		At                                  time.Time
		Seq                                 uint64
	}
	// SetAccident puts a registration in accident; one already in accident
	// keeps its Since.
	SetAccident struct {
		Vendor, Serial, Institution string
		Since                       time.Time
		Seq                         uint64
	}
	// RecoverInstitution ends the accident of a registration.
	RecoverInstitution struct {
		Vendor, Serial, Institution string
		At                          time.Time
		InBranch                    bool
		Seq                         uint64
	}
	// SetBranchRecovered sets whether an in-branch recovery has happened
	// since the device's last loss report.
	SetBranchRecovered struct {
		Vendor, Serial string
		Value          bool
		Seq            uint64
	}
	// AddHistory appends to a device's history.
	AddHistory struct{ Row History }
	// ApproveHistory records the approval of a device's history row.
	ApproveHistory struct {
		Vendor, Serial string
		EventID        uuid.UUID
		Approval       HistoryApproval
	}
	// EnsureErrors creates a device's error row at zero when it has none.
	EnsureErrors struct {
		Vendor, Serial string
		Seq            uint64
	}
	// SetErrors sets a device's error count; LastErrorAt or LastResetAt,
	// whichever is set, replaces the stored one.
	SetErrors struct{ Row Errors }
	// PutMobile inserts or replaces a customer's mobile OTP.
	PutMobile struct{ Row Mobile }
	// SetMobileErrors sets the PIN error count of a customer's mobile OTP.
	SetMobileErrors struct {
		CustomerNo               string
		Errors                   int
		Locked                   bool
		LastErrorAt, LastResetAt *time.Time
		Seq                      uint64
	}
	// DeleteMobile removes a customer's mobile OTP.
	DeleteMobile struct{ CustomerNo string }
	// PutApproval records a branch event awaiting approval.
	PutApproval struct{ Row Approval }
	// DeleteApproval removes an approved event from the pending list.
	DeleteApproval struct{ EventID uuid.UUID }
)

func (PutCustomer) change()        {}
func (PutCustomerDevice) change()  {}
func (EndCustomerDevice) change()  {}
func (AddMedia) change()           {}
func (EndMedia) change()           {}
func (PutInstitution) change()     {}
func (EndInstitution) change()     {}
func (SetAccident) change()        {}
func (RecoverInstitution) change() {}
func (SetBranchRecovered) change() {}
func (AddHistory) change()         {}
func (ApproveHistory) change()     {}
func (EnsureErrors) change()       {}
func (SetErrors) change()          {}
func (PutMobile) change()          {}
func (SetMobileErrors) change()    {}
func (DeleteMobile) change()       {}
func (PutApproval) change()        {}
func (DeleteApproval) change()     {}

// Kinds of media in the customer views.
const (
	KindHardware = "HARDWARE"
	KindMobile   = "MOBILE"
)

// Apply returns the row changes that event e (the idx-th event of the
// message at stream sequence seq) makes to every view. It is pure.
func Apply(seq uint64, idx int, e events.Event) []Change {
	var out []Change
	if e.Approvable() {
		out = append(out, PutApproval{Approval{EventID: e.ID, Seq: seq, Idx: idx, AggregateKind: string(e.Aggregate.Kind),
			AggregateKey: e.Aggregate.Key, Type: string(e.Type()), Institution: e.Institution, Staff: e.Staff, OccurredAt: micro(e.OccurredAt)}})
	}
	if a, ok := e.Payload.(events.Approved); ok {
		out = append(out, DeleteApproval{a.EventID})
	}
	switch e.Aggregate.Kind {
	case events.KindDevice:
		return append(out, applyDevice(seq, idx, e)...)
	case events.KindCustomer:
		return append(out, applyCustomer(seq, idx, e)...)
	}
	return out
}

func applyDevice(seq uint64, idx int, e events.Event) []Change {
	vendor, serial, _ := e.Aggregate.DeviceKey()
	payload, _ := events.MarshalPayload(e.Payload)
	at := micro(e.OccurredAt)
	docs := make([]string, len(e.Documents))
	for i, d := range e.Documents {
		docs[i] = string(d)
	}
	out := []Change{AddHistory{History{Vendor: vendor, Serial: serial, Seq: seq, Idx: idx, EventID: e.ID, Type: string(e.Type()),
		OccurredAt: at, RecordedAt: micro(e.RecordedAt), Institution: e.Institution, Channel: string(e.Channel),
		OriginChannel: string(e.OriginChannel), Actor: e.Actor, Principal: e.Principal, Staff: e.Staff, Documents: docs, Payload: payload}}}
	switch p := e.Payload.(type) {
	case events.Registered:
		out = append(out,
			PutInstitution{Institution{Vendor: vendor, Serial: serial, Institution: e.Institution, CustomerNo: p.CustomerNo,
				RegisteredAt: at, WarrantyFrom: p.WarrantyFrom, WarrantyTo: p.WarrantyTo, UpdatedSeq: seq}},
			EnsureErrors{vendor, serial, seq})
	case events.Cancelled:
		out = append(out, EndInstitution{vendor, serial, e.Institution, string(p.Reason), at, seq})
	case events.ReportedLost:
		for _, inst := range p.Institutions {
			out = append(out, SetAccident{vendor, serial, inst, at, seq})
		}
		out = append(out, SetBranchRecovered{vendor, serial, false, seq})
	case events.Recovered:
		out = append(out, RecoverInstitution{vendor, serial, e.Institution, at, p.InBranch, seq})
		if p.InBranch {
			out = append(out, SetBranchRecovered{vendor, serial, true, seq})
		}
	case events.Approved:
		out = append(out, ApproveHistory{vendor, serial, p.EventID, HistoryApproval{Approver: p.Approver, ApprovedAt: at}})
	case events.ErrorIncremented:
		out = append(out, SetErrors{Errors{Vendor: vendor, Serial: serial, Count: p.CountAfter, Locked: p.Locked, LastErrorAt: &at, UpdatedSeq: seq}})
	case events.ErrorReset:
		out = append(out, SetErrors{Errors{Vendor: vendor, Serial: serial, LastResetAt: &at, UpdatedSeq: seq}})
	}
	return out
}

func applyCustomer(seq uint64, idx int, e events.Event) []Change {
	no, at := e.Aggregate.Key, micro(e.OccurredAt)
	media := func(kind, id, generatorNo string) AddMedia {
		return AddMedia{Media{CustomerNo: no, Seq: seq, Idx: idx, Kind: kind, MediumID: id, GeneratorNumber: generatorNo,
			IssueStatus: IssueStatusIssued, Institution: e.Institution, Channel: string(e.Channel), IssuedAt: at}}
	}
	switch p := e.Payload.(type) {
	case events.CustomerProfiled:
		accounts := p.Accounts
		if accounts == nil {
			accounts = []string{}
		}
		return []Change{PutCustomer{Customer{CustomerNo: no, Type: string(p.CustomerType), Nationality: string(p.Nationality),
			RealNameFP: p.RealNameFingerprint, RealNameMasked: p.RealNameMasked, Accounts: accounts, UpdatedSeq: seq}}}
	case events.Registered:
		id := p.Vendor + "." + p.Serial
		return []Change{PutCustomerDevice{CustomerDevice{CustomerNo: no, Kind: KindHardware, MediumID: id, Status: StatusActive, Since: at, UpdatedSeq: seq}},
			media(KindHardware, id, p.Serial)}
	case events.Cancelled:
		id := p.Vendor + "." + p.Serial
		return []Change{EndCustomerDevice{no, KindHardware, id, StatusCancelled, at, seq}, EndMedia{no, KindHardware, id, string(p.Reason), at}}
	case events.MobileIssued:
		return []Change{
			PutMobile{Mobile{CustomerNo: no, GeneratorNo: p.GeneratorNo, PhoneMasked: p.PhoneMasked, IssuedAt: at, ValidUntil: micro(p.ValidUntil), UpdatedSeq: seq}},
			PutCustomerDevice{CustomerDevice{CustomerNo: no, Kind: KindMobile, MediumID: p.GeneratorNo, Status: StatusActive, Since: at, UpdatedSeq: seq}},
			media(KindMobile, p.GeneratorNo, p.GeneratorNo)}
	case events.MobileRevoked:
		return []Change{DeleteMobile{no}, EndCustomerDevice{no, KindMobile, p.GeneratorNo, StatusRevoked, at, seq},
			EndMedia{no, KindMobile, p.GeneratorNo, string(p.Reason), at}}
	case events.ErrorIncremented:
		return []Change{SetMobileErrors{CustomerNo: no, Errors: p.CountAfter, Locked: p.Locked, LastErrorAt: &at, Seq: seq}}
	case events.ErrorReset:
		return []Change{SetMobileErrors{CustomerNo: no, LastResetAt: &at, Seq: seq}}
	}
	return nil
}

// micro returns t in UTC at PostgreSQL's precision, so that both stores hold
// the same instants.
func micro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
