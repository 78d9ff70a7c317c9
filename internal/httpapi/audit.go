package httpapi

import (
	"context"
	"net/http"

	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/projections"
)

// auditState is GET /v1/audit: what auditors and operators check first —
// the stream's last signed checkpoint, this serve's last verification of
// the whole stream, and the messages the projector set aside.
type auditState struct {
	Checkpoint   *consumers.StoredCheckpoint `json:"checkpoint"`   // null: none signed yet
	Verification *consumers.Verification     `json:"verification"` // null: none run by this serve
	Quarantine   quarantine                  `json:"quarantine"`
}

type quarantine struct {
	Count int                       `json:"count"`
	Items []projections.Quarantined `json:"items"` // the first maxQuarantineShown by sequence
}

const maxQuarantineShown = 100

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	st, err := s.auditState(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) auditState(ctx context.Context) (auditState, error) {
	var st auditState
	cp, ok, err := consumers.LastCheckpoint(ctx, s.cfg.Journal)
	if err != nil {
		return st, err
	}
	if ok {
		st.Checkpoint = &cp
	}
	if v, ok := s.cfg.Verifier.Last(); ok {
		st.Verification = &v
	}
	q, err := s.cfg.Views.Quarantine(ctx)
	if err != nil {
		return st, err
	}
	st.Quarantine = quarantine{Count: len(q), Items: q[:min(len(q), maxQuarantineShown)]}
	if st.Quarantine.Items == nil {
		st.Quarantine.Items = []projections.Quarantined{}
	}
	return st, nil
}

// startVerification is POST /v1/audit/verifications: it starts a
// verification of the whole stream unless one is running, and answers 202
// with the audit state (its verification running). The run belongs to the
// server, not to the request: a client that goes away does not stop it.
func (s *Server) startVerification(w http.ResponseWriter, r *http.Request) {
	s.cfg.Verifier.Start()
	st, err := s.auditState(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, st)
}
