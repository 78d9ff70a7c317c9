package console

import (
	"container/list"
	"crypto/subtle"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// signIn is one OIDC sign-in under way: its secrets, kept here until the
// issuer sends the browser back.
type signIn struct {
	id                     string // its cookie's value
	state, nonce, verifier string
	started                time.Time
	replaces               string // the browser's session when it set out: ended when the new one opens
}

const (
	signInCookie = "otpledger_oidc"
	signInTTL    = 10 * time.Minute
)

// pending holds the OIDC sign-ins under way, oldest first, at most max:
// adding one past the cap drops the oldest, and one older than the TTL is
// dropped when the next is added or at a sweep. Every operation is O(1)
// amortized, under a lock of its own (no page waits on it). It is safe for
// concurrent use.
type pending struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	order *list.List // of *signIn, by start
	byID  map[string]*list.Element
}

func newPending(max int, ttl time.Duration) *pending {
	return &pending{max: max, ttl: ttl, order: list.New(), byID: map[string]*list.Element{}}
}

func (p *pending) add(in *signIn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropExpired(in.started)
	for p.order.Len() >= p.max {
		p.remove(p.order.Front())
	}
	p.byID[in.id] = p.order.PushBack(in)
}

// take removes and returns sign-in id, if it is under way at now.
func (p *pending) take(id string, now time.Time) (*signIn, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.byID[id]
	if !ok {
		return nil, false
	}
	p.remove(e)
	in := e.Value.(*signIn)
	return in, now.Sub(in.started) <= p.ttl
}

func (p *pending) sweep(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropExpired(now)
	return p.order.Len()
}

func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.order.Len()
}

func (p *pending) dropExpired(now time.Time) {
	for e := p.order.Front(); e != nil && now.Sub(e.Value.(*signIn).started) > p.ttl; e = p.order.Front() {
		p.remove(e)
	}
}

func (p *pending) remove(e *list.Element) {
	p.order.Remove(e)
	delete(p.byID, e.Value.(*signIn).id)
}

// oidcLogin starts a sign-in at the issuer: state, nonce and PKCE verifier
// stay in this process, named by a cookie the browser brings back. The
// cookie is SameSite=Lax: the issuer's redirect back is a cross-site
// navigation, which a Strict cookie would not follow. Starts count against
// the client's sign-in attempts.
func (c *Console) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if c.cfg.OIDC == nil {
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	if !c.attempt(w, r) {
		return
	}
	in := &signIn{id: token(), state: token(), nonce: token(), verifier: oauth2.GenerateVerifier(), started: c.cfg.Now()}
	if old, err := r.Cookie(cookieName); err == nil {
		in.replaces = old.Value
	}
	c.signIns.add(in)
	http.SetCookie(w, c.cookie(signInCookie, in.id, "/console/oidc/", int(signInTTL.Seconds()), http.SameSiteLaxMode))
	http.Redirect(w, r, c.cfg.OIDC.AuthURL(in.state, in.nonce, in.verifier), http.StatusSeeOther)
}

// oidcCallback is where the issuer sends the browser back: the state must
// be the sign-in's, the code is redeemed (with the PKCE verifier), the ID
// token verified (with the nonce) and a session opened with it. The page
// then moves on to the console by itself: a redirect would carry on the
// issuer's cross-site navigation, on which the Strict session cookie is
// not sent.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	cookie, err := r.Cookie(signInCookie)
	if c.cfg.OIDC == nil || err != nil {
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	in, live := c.signIns.take(cookie.Value, c.cfg.Now())
	http.SetCookie(w, c.cookie(signInCookie, "", "/console/oidc/", -1, http.SameSiteLaxMode))
	q := r.URL.Query()
	refuse := func(why string) {
		c.loginForm(w, r, http.StatusUnauthorized, "통합 인증 로그인 실패: "+why)
	}
	switch {
	case !live:
		refuse("로그인 시도가 없거나 만료되었습니다. 다시 시도하십시오.")
		return
	case q.Get("error") != "":
		refuse("인증 기관이 로그인을 거부했습니다.")
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(in.state)) != 1:
		refuse("이 로그인 시도의 응답이 아닙니다 (state).")
		return
	}
	id, raw, exp, err := c.cfg.OIDC.Exchange(r.Context(), q.Get("code"), in.nonce, in.verifier)
	if err != nil {
		refuse("인증 기관의 토큰을 받아들일 수 없습니다.")
		return
	}
	c.open(w, &session{key: raw, principal: id.Principal, ends: exp}, in.replaces)
	c.render(w, http.StatusOK, "signed-in.html", page{Title: "로그인"})
}
