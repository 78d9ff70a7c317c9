package console

import (
	"context"
	"sync"
	"time"

	"github.com/otpledger/otpledger/events"
)

// session is one signed-in principal's.
type session struct {
	key       string // the API key typed at sign-in, or the issuer's ID token: the console acts with it
	principal events.Principal
	csrf      string
	seen      time.Time // the last request; guarded by sessions.mu
	ends      time.Time // the absolute end: MaxLifetime after sign-in, or the ID token's expiry if sooner
}

// over says whether s has ended at now: unused for longer than idle, or
// past its absolute end.
func (s *session) over(now time.Time, idle time.Duration) bool {
	return now.Sub(s.seen) > idle || !now.Before(s.ends)
}

// sessions holds the signed-in sessions by id, at most max of them (the
// least recently used ends to make room). It is safe for concurrent use.
type sessions struct {
	mu   sync.Mutex
	max  int
	byID map[string]*session
}

// use returns session sid, live at now, and marks it used; nil when there
// is none or it has ended (it is then gone).
func (st *sessions) use(sid string, now time.Time, idle time.Duration) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.byID[sid]
	if s == nil {
		return nil
	}
	if s.over(now, idle) {
		delete(st.byID, sid)
		return nil
	}
	s.seen = now
	return s
}

// open adds s as sid and ends the session it replaces (the browser's
// earlier one), so that signing in always yields a new id.
func (st *sessions) open(sid string, s *session, replaces string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, replaces)
	if len(st.byID) >= st.max {
		var oldest string
		for id, o := range st.byID {
			if oldest == "" || o.seen.Before(st.byID[oldest].seen) {
				oldest = id
			}
		}
		delete(st.byID, oldest)
	}
	st.byID[sid] = s
}

// end ends session sid.
func (st *sessions) end(sid string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.byID, sid)
}

// sweep ends every session over at now and returns how many remain.
func (st *sessions) sweep(now time.Time, idle time.Duration) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, s := range st.byID {
		if s.over(now, idle) {
			delete(st.byID, id)
		}
	}
	return len(st.byID)
}

func (st *sessions) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.byID)
}

// Sweep ends every session unused for longer than the idle timeout or past
// its absolute lifetime, and forgets abandoned sign-ins at the issuer, as
// of the console's clock. It returns the sessions and sign-ins remaining.
// It is safe to call concurrently with requests.
func (c *Console) Sweep() (sessions, signIns int) {
	now := c.cfg.Now()
	return c.sessions.sweep(now, c.cfg.IdleTimeout), c.signIns.sweep(now)
}

// SweepEvery runs [Console.Sweep] every d until ctx ends.
func (c *Console) SweepEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Sweep()
		}
	}
}
