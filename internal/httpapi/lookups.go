package httpapi

import (
	"net/http"

	"github.com/otpledger/otpledger/internal/access"
)

// lookupRate is the configured bound of each principal's personal-data
// look-ups (find a customer by real-name or account number): far below
// enumeration speed, enough for a teller's day. It is kept in the journal
// (the principal's look-up log, [access.Keys.RecordLookup]), so that every
// replica sharing the journal holds one limit, with views in memory too.
func (s *Server) lookupRate() access.LookupRate {
	return access.LookupRate{PerMinute: s.cfg.LookupsPerMinute}
}

// limitLookups answers 429 with Retry-After when the principal is over its
// look-up rate, before the views are asked, and otherwise runs next (whose
// record of the look-up holds the rate exactly).
func (s *Server) limitLookups(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		wait, err := s.cfg.Keys.LookupWait(r.Context(), identity(r).Principal, s.lookupRate())
		if err == nil && wait > 0 {
			err = &access.LookupLimited{RetryAfter: wait}
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		next(w, r)
	}
}
