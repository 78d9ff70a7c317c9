package console

import (
	"errors"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// maxForm is the most a console form may hold: the largest (2372's
// registration) is well under 1 KiB.
const maxForm = 16 << 10

// limitForms bounds every request's body and parses a POST's form before
// the route sees it: URL-encoded only, whatever the method (a multipart
// body, which the standard library's FormValue would spool to temporary
// files even on a GET, is refused with 415), and at most [maxForm] bytes
// (413, read no further than the limit, the connection then closed).
func limitForms(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if mt, _, _ := mime.ParseMediaType(ct); (ct != "" || r.Method == http.MethodPost) && mt != "application/x-www-form-urlencoded" {
			http.Error(w, "the console takes URL-encoded forms only", http.StatusUnsupportedMediaType)
			return
		}
		if r.ContentLength > maxForm {
			w.Header().Set("Connection", "close")
			http.Error(w, "form too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				http.Error(w, "form too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "malformed form", http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limiter counts sign-in attempts per client in fixed windows: at most
// limit per client per window. It remembers at most max clients a window;
// clients beyond those share one overflow count of the same limit, so a
// spread of addresses neither grows the memory nor escapes the limit. It
// is safe for concurrent use.
type limiter struct {
	mu       sync.Mutex
	limit    int
	max      int
	window   time.Duration
	start    time.Time
	counts   map[netip.Prefix]int
	overflow int
}

func newLimiter(limit, max int, window time.Duration) *limiter {
	return &limiter{limit: limit, max: max, window: window, counts: make(map[netip.Prefix]int, min(max, 1024))}
}

// allow counts one attempt of client at now and says whether it is within
// the limit.
func (l *limiter) allow(client netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= l.window || now.Before(l.start) {
		l.start, l.overflow = now, 0
		clear(l.counts)
	}
	n, known := l.counts[client]
	if !known && len(l.counts) >= l.max {
		l.overflow++
		return l.overflow <= l.limit
	}
	if n >= l.limit {
		return false
	}
	l.counts[client] = n + 1
	return true
}

// clientOf names the client of r for the sign-in limit: its IPv4 address,
// or its IPv6 /64 (one host's share of a network). A request from a
// trusted proxy is named by the nearest X-Forwarded-For hop that is not a
// trusted proxy itself; anyone else's X-Forwarded-For is ignored (a client
// could write any).
func clientOf(r *http.Request, trusted []netip.Prefix) netip.Prefix {
	addr := addrOf(r.RemoteAddr)
	if isTrusted(addr, trusted) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop := addrOf(strings.TrimSpace(hops[i]))
			if !hop.IsValid() {
				break
			}
			addr = hop
			if !isTrusted(hop, trusted) {
				break
			}
		}
	}
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// addrOf parses "host:port" or a bare address; invalid when neither.
func addrOf(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
