package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// lookupLimiter bounds each principal's personal-data look-ups (find a
// customer by real-name or account number): far below enumeration speed,
// enough for a teller's day. Limiters of principals idle for an hour are
// dropped.
type lookupLimiter struct {
	perMinute int
	mu        sync.Mutex
	byID      map[string]*limiterEntry
}

type limiterEntry struct {
	l    *rate.Limiter
	seen time.Time
}

func newLookupLimiter(perMinute int) *lookupLimiter {
	return &lookupLimiter{perMinute: perMinute, byID: map[string]*limiterEntry{}}
}

// allow reports whether principal id may look up now, and otherwise how
// long to wait.
func (ll *lookupLimiter) allow(id string, now time.Time) (bool, time.Duration) {
	ll.mu.Lock()
	defer ll.mu.Unlock()
	e, ok := ll.byID[id]
	if !ok {
		if len(ll.byID) > 10_000 {
			for k, v := range ll.byID {
				if now.Sub(v.seen) > time.Hour {
					delete(ll.byID, k)
				}
			}
		}
		e = &limiterEntry{l: rate.NewLimiter(rate.Limit(float64(ll.perMinute)/60), max(1, ll.perMinute/6))}
		ll.byID[id] = e
	}
	e.seen = now
	r := e.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limitLookups answers 429 with Retry-After when the principal is over its
// look-up rate, and otherwise runs next.
func (s *Server) limitLookups(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.lookups.allow(identity(r).ID, time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			s.fail(w, r, &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited",
				Message: "too many personal-data look-ups by this principal; try again later"})
			return
		}
		next(w, r)
	}
}
