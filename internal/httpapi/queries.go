package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/otpledger/otpledger/aggregates"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/projections"
)

// page reads ?limit= and ?cursor=.
func page(r *http.Request) (projections.Page, error) {
	p := projections.Page{Cursor: r.URL.Query().Get("cursor")}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > projections.MaxLimit {
			return p, invalid("limit", "must be 1 to 500")
		}
		p.Limit = n
	}
	return p, nil
}

// waitMinSequence honours ?min_sequence=N: it waits, up to the configured
// bound, for the views to reach N (read-your-writes). The answer then says
// which position it reflects, reached or not. A sequence beyond the
// stream's last is refused at once (400): no write answered it, so no wait
// can reach it, and each wait costs store reads. The wait asks the views'
// position 5 ms after the request, then at doubling intervals up to
// 250 ms: about a dozen reads in 2 s, not one every 5 ms (the store is
// PostgreSQL when views are shared).
func (s *Server) waitMinSequence(r *http.Request) error {
	v := r.URL.Query().Get("min_sequence")
	if v == "" {
		return nil
	}
	want, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return invalid("min_sequence", "must be a stream sequence")
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MinSequenceWait)
	defer cancel()
	for delay, first := minSequencePoll, true; ; delay = min(2*delay, maxSequencePoll) {
		pos, err := s.cfg.Views.Position(ctx)
		if err != nil || pos >= want {
			return nil
		}
		if first {
			first = false
			last, err := s.cfg.Journal.LastSequence(ctx)
			if err == nil && want > last {
				return invalid("min_sequence", "beyond the stream's last sequence, "+strconv.FormatUint(last, 10)+": no write answered it")
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// The intervals at which a min_sequence wait asks the views' position.
const (
	minSequencePoll = 5 * time.Millisecond
	maxSequencePoll = 250 * time.Millisecond
)

// checkQuery validates what every query may carry: the codes in its path
// (as the command routes do) and a limit, whether or not the view pages.
func checkQuery(r *http.Request) error {
	if no := r.PathValue("customer_no"); no != "" && !events.ValidCustomerNo(no) {
		return events.CustomerNoCode.Refusal("customer_no")
	}
	if vendor, serial := r.PathValue("vendor"), r.PathValue("serial"); vendor != "" || serial != "" {
		if err := checkDevice(vendor, serial); err != nil {
			return err
		}
	}
	if code := r.PathValue("code"); code != "" && !events.ValidInstitution(code) {
		return events.InstitutionCode.Refusal("code")
	}
	_, err := page(r)
	return err
}

// query wraps a query handler with validation, min_sequence and error
// handling.
func (s *Server) query(fn func(r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkQuery(r); err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.waitMinSequence(r); err != nil {
			s.fail(w, r, err)
			return
		}
		v, err := fn(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// deviceState is the answer of GET /v1/devices/{vendor}/{serial}.
type deviceState struct {
	Vendor        string                             `json:"vendor"`
	Serial        string                             `json:"serial"`
	Version       uint64                             `json:"version"`
	Registrations map[string]aggregates.Registration `json:"registrations"`
	ErrorCount    int                                `json:"error_count"`
	Locked        bool                               `json:"locked"`
	InAccidentAt  []string                           `json:"in_accident_at"`
	AsOf          *time.Time                         `json:"as_of,omitempty"`
	AsOfSequence  uint64                             `json:"as_of_sequence"`
}

// The query handlers: each answers one screen from the views (or, for a
// device's state, from the ledger); query wraps them (the route table is in
// routes).

func (s *Server) customerDevices(r *http.Request) (any, error) {
	return s.cfg.Views.CustomerDevices(r.Context(), r.PathValue("customer_no"), s.cfg.Ledger.Now())
}

func (s *Server) customerMedia(r *http.Request) (any, error) {
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != projections.KindHardware && kind != projections.KindMobile {
		return nil, invalid("kind", "must be HARDWARE or MOBILE")
	}
	return s.cfg.Views.CustomerMedia(r.Context(), r.PathValue("customer_no"), kind, p)
}

func (s *Server) mobileOTP(r *http.Request) (any, error) {
	m, ok, seq, err := s.cfg.Views.MobileOTP(r.Context(), r.PathValue("customer_no"), s.cfg.Ledger.Now())
	if err == nil && !ok {
		return nil, notFound("customer has no mobile OTP in force")
	}
	return struct {
		projections.Mobile
		AsOfSequence uint64 `json:"as_of_sequence"`
	}{m, seq}, err
}

// findCustomers looks customers up by real-name or account number, and
// records the look-up (who found whom, never the number) before answering.
func (s *Server) findCustomers(r *http.Request) (any, error) {
	q := r.URL.Query()
	fp, account := "", q.Get("account_no")
	if n := q.Get("real_name_number"); n != "" {
		var err error
		if fp, _, err = s.cfg.Fingerprinter.RealName(n); err != nil {
			return nil, err
		}
	}
	if fp == "" && account == "" {
		return nil, invalid("real_name_number", "give real_name_number or account_no")
	}
	if account != "" && !events.ValidAccountNo(account) {
		return nil, events.AccountNoCode.Refusal("account_no")
	}
	l, err := s.cfg.Views.FindCustomers(r.Context(), fp, account)
	if err != nil {
		return nil, err
	}
	query, found := "account_no", make([]string, len(l.Items))
	if fp != "" {
		query = "real_name_number"
	}
	for i, c := range l.Items {
		found[i] = c.CustomerNo
	}
	if err := s.cfg.Keys.RecordLookup(r.Context(), identity(r).Principal, query, found, s.lookupRate()); err != nil {
		return nil, err
	}
	return l, nil
}

// device answers a device's state from the ledger, now or ?as_of an instant.
func (s *Server) device(r *http.Request) (any, error) {
	vendor, serial := r.PathValue("vendor"), r.PathValue("serial")
	var d aggregates.Device
	var seq uint64
	var err error
	var asOf *time.Time
	if v := r.URL.Query().Get("as_of"); v != "" {
		t, perr := time.Parse(time.RFC3339Nano, v)
		if perr != nil {
			return nil, invalid("as_of", "must be an RFC 3339 timestamp")
		}
		if t.IsZero() { // the ledger reads a zero instant as "now"
			return nil, invalid("as_of", "must be after 0001-01-01T00:00:00Z")
		}
		asOf = &t
		d, seq, err = s.cfg.Ledger.DeviceAsOf(r.Context(), vendor, serial, 0, t)
	} else {
		d, seq, err = s.cfg.Ledger.LoadDevice(r.Context(), vendor, serial)
	}
	if err != nil {
		return nil, err
	}
	if !d.Known() {
		return nil, notFound("unknown device")
	}
	out := deviceState{Vendor: vendor, Serial: serial, Version: d.Version, Registrations: d.Registrations,
		ErrorCount: d.ErrorCount, Locked: d.Locked, InAccidentAt: []string{}, AsOf: asOf, AsOfSequence: seq}
	for inst := range d.Accident {
		out.InAccidentAt = append(out.InAccidentAt, inst)
	}
	return out, nil
}

func (s *Server) deviceInstitutions(r *http.Request) (any, error) {
	return s.cfg.Views.DeviceInstitutions(r.Context(), r.PathValue("vendor"), r.PathValue("serial"))
}

func (s *Server) deviceHistory(r *http.Request) (any, error) {
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Views.DeviceHistory(r.Context(), r.PathValue("vendor"), r.PathValue("serial"), p)
}

func (s *Server) deviceErrors(r *http.Request) (any, error) {
	e, ok, seq, err := s.cfg.Views.DeviceErrors(r.Context(), r.PathValue("vendor"), r.PathValue("serial"))
	if err == nil && !ok {
		return nil, notFound("unknown device")
	}
	return struct {
		projections.Errors
		AsOfSequence uint64 `json:"as_of_sequence"`
	}{e, seq}, err
}

func (s *Server) institutionDevices(r *http.Request) (any, error) {
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	status := projections.Status(r.URL.Query().Get("status"))
	switch status {
	case projections.StatusAll, projections.StatusInAccident, projections.StatusLocked:
	default:
		return nil, invalid("status", "must be IN_ACCIDENT or LOCKED")
	}
	return s.cfg.Views.InstitutionDevices(r.Context(), r.PathValue("code"), status, p)
}

func (s *Server) pendingApprovals(r *http.Request) (any, error) {
	p, err := page(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Views.PendingApprovals(r.Context(), p)
}
