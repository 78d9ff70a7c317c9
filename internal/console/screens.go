package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/otpledger/otpledger/consumers"
	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/projections"
)

// home is the menu, by role.
func (c *Console) home(w http.ResponseWriter, r *http.Request, s *session) {
	c.render(w, http.StatusOK, "home.html", page{Title: "업무 메뉴", Session: s})
}

// deviceScreen is 2376 (OTP 매체조회) for one device.
type deviceScreen struct {
	Vendor, Serial string
	Found          bool
	State          map[string]any
	Institutions   []map[string]any
	Errors         map[string]any
	History        []map[string]any
	Next           string // the 연속 (next page) cursor
	Cursor         string
	AsOf           string // the state as of this instant (datetime-local, KST); "": now
	Documents      []string
}

var branchDocuments = []string{string(events.DocRealNameID), string(events.DocProcessingForm), string(events.DocSealOrSignature)}

// device shows 2376 for ?vendor=&serial= (history paged by ?cursor=).
func (c *Console) device(w http.ResponseWriter, r *http.Request, s *session) {
	c.showDevice(w, r, s, http.StatusOK, "", nil, 0)
}

// showDevice renders 2376, its views read at stream sequence minSeq at least
// (the command just made: read-your-writes).
func (c *Console) showDevice(w http.ResponseWriter, r *http.Request, s *session, status int, notice string, refused *refusal, minSeq uint64) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = r.PostForm
	}
	d := deviceScreen{Vendor: strings.ToUpper(strings.TrimSpace(q.Get("vendor"))), Serial: strings.ToUpper(strings.TrimSpace(q.Get("serial"))),
		Cursor: r.URL.Query().Get("cursor"), AsOf: r.URL.Query().Get("as_of"), Documents: branchDocuments}
	if d.Vendor != "" && d.Serial != "" {
		base := "/v1/devices/" + url.PathEscape(d.Vendor) + "/" + url.PathEscape(d.Serial)
		state := base
		if at, err := time.ParseInLocation("2006-01-02T15:04", d.AsOf, kst); err == nil {
			state += "?as_of=" + url.QueryEscape(at.UTC().Format(time.RFC3339))
		}
		var inst, hist struct {
			Items      []map[string]any `json:"items"`
			NextCursor string           `json:"next_cursor"`
		}
		if e := c.call(r.Context(), s, http.MethodGet, state, nil, &d.State); e == nil {
			d.Found = true
			at := "min_sequence=" + strconv.FormatUint(minSeq, 10)
			_ = c.call(r.Context(), s, http.MethodGet, base+"/institutions?"+at, nil, &inst)
			_ = c.call(r.Context(), s, http.MethodGet, base+"/errors?"+at, nil, &d.Errors)
			_ = c.call(r.Context(), s, http.MethodGet, base+"/history?limit=20&"+at+"&cursor="+url.QueryEscape(d.Cursor), nil, &hist)
			d.Institutions, d.History, d.Next = inst.Items, hist.Items, hist.NextCursor
		} else if e.Status != http.StatusNotFound && refused == nil {
			refused, status = e, e.Status
		}
	}
	c.render(w, status, "device.html", page{Title: "2376 OTP 매체조회", Session: s, Notice: notice, Refusal: refused, Data: d})
}

// branchMeta is what every form's command says of the branch: the channel,
// the customer acting in person, the teller (the signed-in principal), the
// documents ticked.
func branchMeta(r *http.Request, s *session) map[string]any {
	return map[string]any{"channel": "BRANCH", "actor": map[string]string{"role": "SELF", "id": r.PostFormValue("customer_no")},
		"staff": s.principal.ID, "documents": r.PostForm["documents"]}
}

// register is 2372's registration of another institution's device at home.
func (c *Console) register(w http.ResponseWriter, r *http.Request, s *session) {
	body := branchMeta(r, s)
	for _, f := range []string{"customer_no", "response_code", "warranty_from", "warranty_to"} {
		if v := r.PostFormValue(f); v != "" {
			body[f] = v
		}
	}
	c.command(w, r, s, "/registrations", body, "등록되었습니다 (2372).")
}

// reportLoss is 2374's loss report; its reason is optional (the screen
// collects none) and sent when chosen.
func (c *Console) reportLoss(w http.ResponseWriter, r *http.Request, s *session) {
	body := branchMeta(r, s)
	for _, f := range []string{"reason", "customer_no"} {
		if v := r.PostFormValue(f); v != "" {
			body[f] = v
		}
	}
	c.command(w, r, s, "/loss-reports", body, "사고신고가 등록되었습니다 (2374).")
}

// command sends a device command and shows 2376 with its outcome.
func (c *Console) command(w http.ResponseWriter, r *http.Request, s *session, suffix string, body map[string]any, done string) {
	path := "/v1/devices/" + url.PathEscape(strings.ToUpper(r.PostFormValue("vendor"))) + "/" + url.PathEscape(strings.ToUpper(r.PostFormValue("serial"))) + suffix
	var answer struct {
		Events []struct {
			Sequence uint64 `json:"sequence"`
		} `json:"events"`
	}
	if e := c.call(r.Context(), s, http.MethodPost, path, body, &answer); e != nil {
		c.showDevice(w, r, s, e.Status, "", e, 0)
		return
	}
	var last uint64
	for _, e := range answer.Events {
		last = max(last, e.Sequence)
	}
	c.showDevice(w, r, s, http.StatusOK, done, nil, last)
}

// approvals is the queue of branch events awaiting a manager.
func (c *Console) approvals(w http.ResponseWriter, r *http.Request, s *session) {
	c.showApprovals(w, r, s, http.StatusOK, "", nil)
}

func (c *Console) showApprovals(w http.ResponseWriter, r *http.Request, s *session, status int, notice string, refused *refusal) {
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if e := c.call(r.Context(), s, http.MethodGet, "/v1/approvals/pending?limit=500", nil, &list); e != nil && refused == nil {
		refused, status = e, e.Status
	}
	c.render(w, status, "approvals.html", page{Title: "책임자 승인", Session: s, Notice: notice, Refusal: refused, Data: list.Items})
}

// approve approves one event (a manager; the API refuses anyone else).
func (c *Console) approve(w http.ResponseWriter, r *http.Request, s *session) {
	if e := c.call(r.Context(), s, http.MethodPost, "/v1/events/"+url.PathEscape(r.PathValue("event_id"))+"/approval", map[string]any{}, nil); e != nil {
		c.showApprovals(w, r, s, e.Status, "", e)
		return
	}
	c.showApprovals(w, r, s, http.StatusOK, "승인되었습니다.", nil)
}

// customers finds customers by real-name number or account number. The
// number is posted, never put in a URL (history, logs); the API records the
// look-up and answers with masked numbers only.
func (c *Console) customers(w http.ResponseWriter, r *http.Request, s *session) {
	var found struct {
		Items []map[string]any `json:"items"`
	}
	q := url.Values{}
	if n := strings.TrimSpace(r.PostFormValue("real_name_number")); n != "" {
		q.Set("real_name_number", n)
	}
	if a := strings.TrimSpace(r.PostFormValue("account_no")); a != "" {
		q.Set("account_no", a)
	}
	status, notice := http.StatusOK, ""
	e := c.call(r.Context(), s, http.MethodGet, "/v1/customers?"+q.Encode(), nil, &found)
	if e != nil {
		status = e.Status
	} else if len(found.Items) == 0 {
		notice = "해당 고객이 없습니다."
	}
	c.render(w, status, "customers.html", page{Title: "고객 조회", Session: s, Notice: notice, Refusal: e, Data: found.Items})
}

// customerScreen is 2373 (매체 이력) and the customer's 2376 list.
type customerScreen struct {
	No, Kind  string
	Media     []map[string]any
	Devices   []map[string]any
	Mobile    map[string]any
	Documents []string
}

// customer shows 2373 for ?no= (media of ?kind=), the per-customer list
// and the mobile OTP in force.
func (c *Console) customer(w http.ResponseWriter, r *http.Request, s *session) {
	c.showCustomer(w, r, s, http.StatusOK, "", nil, 0)
}

func (c *Console) showCustomer(w http.ResponseWriter, r *http.Request, s *session, status int, notice string, refused *refusal, minSeq uint64) {
	d := customerScreen{No: strings.TrimSpace(r.FormValue("no")), Kind: r.FormValue("kind"), Documents: branchDocuments}
	if d.No != "" {
		base, at := "/v1/customers/"+url.PathEscape(d.No), "min_sequence="+strconv.FormatUint(minSeq, 10)
		var media, devices struct {
			Items []map[string]any `json:"items"`
		}
		if e := c.call(r.Context(), s, http.MethodGet, base+"/media?limit=500&kind="+url.QueryEscape(d.Kind)+"&"+at, nil, &media); e != nil && refused == nil {
			refused, status = e, e.Status
		}
		_ = c.call(r.Context(), s, http.MethodGet, base+"/devices?"+at, nil, &devices)
		_ = c.call(r.Context(), s, http.MethodGet, base+"/mobile-otp?"+at, nil, &d.Mobile)
		d.Media, d.Devices = media.Items, devices.Items
	}
	c.render(w, status, "customer.html", page{Title: "2373 매체 이력", Session: s, Notice: notice, Refusal: refused, Data: d})
}

// resetErrors is 2375's error-count reset in branch.
func (c *Console) resetErrors(w http.ResponseWriter, r *http.Request, s *session) {
	body := branchMeta(r, s)
	if no := r.PostFormValue("customer_no"); no != "" {
		body["customer_no"] = no
	}
	c.command(w, r, s, "/errors/reset", body, "오류횟수가 초기화되었습니다 (2375).")
}

// revokeMobile is A013's revocation of the mobile OTP whose generator number
// 2373 shows as issued (교부).
func (c *Console) revokeMobile(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]any{"channel": "BRANCH", "actor": map[string]string{"role": "SELF", "id": r.PostFormValue("no")},
		"staff": s.principal.ID, "documents": r.PostForm["documents"], "generator_number": r.PostFormValue("generator_number")}
	var answer struct {
		Events []struct {
			Sequence uint64 `json:"sequence"`
		} `json:"events"`
	}
	if e := c.call(r.Context(), s, http.MethodPost, "/v1/customers/"+url.PathEscape(r.PostFormValue("no"))+"/mobile-otp/revoke", body, &answer); e != nil {
		c.showCustomer(w, r, s, e.Status, "", e, 0)
		return
	}
	var last uint64
	for _, e := range answer.Events {
		last = max(last, e.Sequence)
	}
	c.showCustomer(w, r, s, http.StatusOK, "모바일 OTP가 폐기되었습니다 (A013).", nil, last)
}

// keysScreen is the admin's page of API keys.
type keysScreen struct {
	Keys  []map[string]any
	Token string // a key just created: its token, shown this once
	Roles []string
}

var keyRoles = []string{"teller", "manager", "producer", "auditor", "operator", "admin"}

// keys lists the API keys (admins; the API refuses anyone else).
func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *session) {
	c.showKeys(w, r, s, http.StatusOK, "", nil, "")
}

func (c *Console) showKeys(w http.ResponseWriter, r *http.Request, s *session, status int, notice string, refused *refusal, token string) {
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if e := c.call(r.Context(), s, http.MethodGet, "/v1/keys", nil, &list); e != nil && refused == nil {
		refused, status = e, e.Status
	}
	c.render(w, status, "keys.html", page{Title: "API 키 관리", Session: s, Notice: notice, Refusal: refused,
		Data: keysScreen{Keys: list.Items, Token: token, Roles: keyRoles}})
}

// createKey creates a key and shows its token once.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, s *session) {
	body := map[string]any{"id": strings.TrimSpace(r.PostFormValue("id")), "role": r.PostFormValue("role")}
	if ch := strings.TrimSpace(r.PostFormValue("channels")); ch != "" {
		body["channels"] = strings.Split(ch, ",")
	}
	var created struct {
		Token string `json:"token"`
	}
	if e := c.call(r.Context(), s, http.MethodPost, "/v1/keys", body, &created); e != nil {
		c.showKeys(w, r, s, e.Status, "", e, "")
		return
	}
	c.showKeys(w, r, s, http.StatusOK, "키가 만들어졌습니다. 토큰은 지금 한 번만 표시됩니다.", nil, created.Token)
}

// revokeKey revokes a key.
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	if e := c.call(r.Context(), s, http.MethodPost, "/v1/keys/"+url.PathEscape(r.PathValue("id"))+"/revoke", map[string]any{}, nil); e != nil {
		c.showKeys(w, r, s, e.Status, "", e, "")
		return
	}
	c.showKeys(w, r, s, http.StatusOK, "키가 폐기되었습니다.", nil, "")
}

// audit is the audit screen (auditors, operators): the last signed
// checkpoint, this serve's last verification, the quarantine.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	c.showAudit(w, r, s, http.MethodGet, "/v1/audit", "")
}

// verify starts a verification of the whole stream (it appends nothing).
func (c *Console) verify(w http.ResponseWriter, r *http.Request, s *session) {
	c.showAudit(w, r, s, http.MethodPost, "/v1/audit/verifications", "검증을 시작했습니다.")
}

func (c *Console) showAudit(w http.ResponseWriter, r *http.Request, s *session, method, path, notice string) {
	var st struct {
		Checkpoint   *consumers.StoredCheckpoint
		Verification *consumers.Verification
		Quarantine   struct {
			Count int
			Items []projections.Quarantined
		}
	}
	status, body := http.StatusOK, any(nil)
	if method == http.MethodPost {
		body = map[string]any{}
	}
	p := page{Title: "감사 — 체크포인트·검증·격리", Session: s, Notice: notice, Data: &st}
	if e := c.call(r.Context(), s, method, path, body, &st); e != nil {
		status, p.Notice, p.Refusal, p.Data = e.Status, "", e, nil
	}
	c.render(w, status, "audit.html", p)
}
