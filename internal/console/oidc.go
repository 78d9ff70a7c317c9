package console

import (
	"crypto/subtle"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// signIn is one OIDC sign-in under way: its secrets, kept here until the
// issuer sends the browser back.
type signIn struct {
	state, nonce, verifier string
	started                time.Time
}

const (
	signInCookie = "otpledger_oidc"
	signInTTL    = 10 * time.Minute
)

// oidcLogin starts a sign-in at the issuer: state, nonce and PKCE verifier
// stay in this process, named by a cookie the browser brings back. The
// cookie is SameSite=Lax: the issuer's redirect back is a cross-site
// navigation, which a Strict cookie would not follow.
func (c *Console) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if c.cfg.OIDC == nil {
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	in := signIn{state: token(), nonce: token(), verifier: oauth2.GenerateVerifier(), started: c.cfg.Now()}
	id := token()
	c.mu.Lock()
	for k, old := range c.signIns { // abandoned sign-ins go
		if c.cfg.Now().Sub(old.started) > signInTTL {
			delete(c.signIns, k)
		}
	}
	c.signIns[id] = in
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: id, Path: "/console/oidc/", MaxAge: int(signInTTL.Seconds()),
		HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode})
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
	c.mu.Lock()
	in, ok := c.signIns[cookie.Value]
	delete(c.signIns, cookie.Value)
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: "", Path: "/console/oidc/", MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure,
		SameSite: http.SameSiteLaxMode})
	q := r.URL.Query()
	refuse := func(why string) {
		c.render(w, http.StatusUnauthorized, "login.html", page{Title: "로그인", Data: true, Notice: "통합 인증 로그인 실패: " + why})
	}
	switch {
	case !ok || c.cfg.Now().Sub(in.started) > signInTTL:
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
	c.open(w, &session{key: raw, principal: id.Principal, expires: exp})
	c.render(w, http.StatusOK, "signed-in.html", page{Title: "로그인"})
}
