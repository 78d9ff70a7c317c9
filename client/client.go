// Package client is the Go client of otpledger's HTTP API for producer
// services: typed commands and queries, and a typed [*Error] that carries the
// refusing rule id (errors.As, then err.Rule). A Client is safe for
// concurrent use.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Error is an error answer of the API. Rule is set for a rule refusal
// (Code "rule_violation"), Field for invalid input.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Rule    string `json:"rule,omitempty"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string {
	switch {
	case e.Rule != "":
		return fmt.Sprintf("otpledger: %s (%s): %s", e.Code, e.Rule, e.Message)
	case e.Field != "":
		return fmt.Sprintf("otpledger: %s (%s): %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("otpledger: %s: %s", e.Code, e.Message)
}

// RuleOf returns the rule id of a refusal, or "".
func RuleOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Rule
	}
	return ""
}

// Actor is who acts.
type Actor struct {
	Role string `json:"role"` // SELF, AGENT, REPRESENTATIVE, STAFF, SYSTEM
	ID   string `json:"id,omitempty"`
}

// Common holds the fields of every command (api.md).
type Common struct {
	Institution   string     `json:"institution,omitempty"`
	Channel       string     `json:"channel"`
	Actor         Actor      `json:"actor"`
	Documents     []string   `json:"documents,omitempty"`
	OriginChannel string     `json:"origin_channel,omitempty"`
	OccurredAt    *time.Time `json:"occurred_at,omitempty"`
	Staff         string     `json:"staff,omitempty"`
	CorrelationID string     `json:"correlation_id,omitempty"`
}

// Registration registers a device (2372).
type Registration struct {
	Common
	CustomerNo   string `json:"customer_no,omitempty"`
	ResponseCode string `json:"response_code,omitempty"`
	WarrantyFrom string `json:"warranty_from,omitempty"`
	WarrantyTo   string `json:"warranty_to,omitempty"`
}

// WithReason is a command with a reason (cancel, loss report). CustomerNo
// names the customer making it when the device has no registration at home.
type WithReason struct {
	Common
	Reason     string `json:"reason,omitempty"`
	CustomerNo string `json:"customer_no,omitempty"`
}

// Attributed is a device command a customer may make (recover, reset):
// CustomerNo as in [WithReason].
type Attributed struct {
	Common
	CustomerNo string `json:"customer_no,omitempty"`
}

// Revocation revokes a mobile OTP (A013): GeneratorNumber names the one it
// revokes (R-MOB-REVOKE-CHANNEL).
type Revocation struct {
	Common
	Reason          string `json:"reason,omitempty"`
	GeneratorNumber string `json:"generator_number"`
}

// Profile records a customer's profile; the real-name number is fingerprinted
// by the ledger and never stored in clear.
type Profile struct {
	Common
	Type           string   `json:"type"`
	Nationality    string   `json:"nationality,omitempty"` // KOREAN or FOREIGN
	Residency      string   `json:"residency,omitempty"`   // the older field, read as its upcast (DOMESTIC → KOREAN)
	RealNameNumber string   `json:"real_name_number"`
	Accounts       []string `json:"accounts,omitempty"`
}

// Verification is the evidence of a non-face-to-face mobile issuance.
type Verification struct {
	HomeAccount       bool `json:"home_account"`
	PhoneIdentity     bool `json:"phone_identity"`
	OneWonTransfer    bool `json:"one_won_transfer"`
	OTPOrSecurityCard bool `json:"otp_or_security_card"`
}

// MobileIssue issues (or reissues) a mobile OTP.
type MobileIssue struct {
	Common
	PhoneID      string        `json:"phone_id"`
	Verification *Verification `json:"verification,omitempty"`
}

// Event is one appended event.
type Event struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Sequence  uint64 `json:"sequence"`
	Aggregate struct {
		Kind string `json:"kind"`
		Key  string `json:"key"`
	} `json:"aggregate"`
	Version uint64 `json:"version"`
}

// Answer is an accepted command's answer.
type Answer struct {
	Events []Event `json:"events"`
}

// Last returns the highest sequence of the answer (for min_sequence).
func (a Answer) Last() uint64 {
	var s uint64
	for _, e := range a.Events {
		s = max(s, e.Sequence)
	}
	return s
}

// Client calls one otpledger.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the API at baseURL ("http://127.0.0.1:8080")
// that authenticates with token (an API key, or an OpenID Connect ID
// token); hc nil means a client with a 30 s timeout. A producer service
// uses an http.Client with a client certificate for mutual TLS instead of
// a token, and passes "".
func New(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: baseURL, token: token, http: hc}
}

// Attempts bounds how often one call is sent: a query or a command that
// met a 503 (the journal or the views unavailable) or a failed connection
// is tried again, after 100 ms,
// 200 ms, 400 ms (or the server's Retry-After, at most 2 s). Commands carry
// an idempotency key on every attempt, so a retry whose first attempt was
// appended after all gets the first answer, never a second event.
const Attempts = 4

// do sends one call, retrying as [Attempts] says; key, when set, is the
// Idempotency-Key.
func (c *Client) do(ctx context.Context, method, path, key string, in, out any) error {
	var data []byte
	if in != nil {
		var err error
		if data, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		status, body, retryAfter, err := c.send(ctx, method, path, key, data, in != nil)
		// A call is tried again only when repeating it is safe: a query, or
		// a command under its idempotency key (not the key routes).
		retry := (err != nil || status == http.StatusServiceUnavailable) && (method == http.MethodGet || key != "")
		if !retry || attempt == Attempts || ctx.Err() != nil {
			if err != nil {
				return fmt.Errorf("otpledger: %w", err)
			}
			return decodeAnswer(status, body, out)
		}
		wait := min(retryAfter, 2*time.Second)
		if wait == 0 {
			wait = 100 * time.Millisecond << (attempt - 1)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("otpledger: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// send sends one attempt and reads its answer.
func (c *Client) send(ctx context.Context, method, path, key string, data []byte, hasBody bool) (status int, body []byte, retryAfter time.Duration, err error) {
	var rd io.Reader
	if hasBody {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, 0, err
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, body, retryAfter, err
}

// decodeAnswer decodes a success into out, or returns the error shape as an
// [*Error].
func decodeAnswer(status int, data []byte, out any) error {
	if status >= 300 {
		var e struct{ Error Error }
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return &Error{Status: status, Code: "http_" + strconv.Itoa(status), Message: http.StatusText(status)}
		}
		e.Error.Status = status
		return &e.Error
	}
	return json.Unmarshal(data, out)
}

// command sends a command under key, or under a key of its own when key is
// "" so that its retries are safe too.
func (c *Client) command(ctx context.Context, method, path, key string, in any) (Answer, error) {
	if key == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		key = "otpledger-client:" + hex.EncodeToString(b)
	}
	var a Answer
	err := c.do(ctx, method, path, key, in, &a)
	return a, err
}

func dev(vendor, serial string) string {
	return "/v1/devices/" + url.PathEscape(vendor) + "/" + url.PathEscape(serial)
}

func cust(no string) string { return "/v1/customers/" + url.PathEscape(no) }

// SetProfile records a customer's profile.
func (c *Client) SetProfile(ctx context.Context, customerNo, key string, p Profile) (Answer, error) {
	return c.command(ctx, http.MethodPut, cust(customerNo), key, p)
}

// Register registers a device at r.Institution (default: home).
func (c *Client) Register(ctx context.Context, vendor, serial, key string, r Registration) (Answer, error) {
	return c.command(ctx, http.MethodPost, dev(vendor, serial)+"/registrations", key, r)
}

// Cancel cancels the device's registration at institution.
func (c *Client) Cancel(ctx context.Context, vendor, serial, institution, key string, r WithReason) (Answer, error) {
	return c.command(ctx, http.MethodPost, dev(vendor, serial)+"/registrations/"+url.PathEscape(institution)+"/cancel", key, r)
}

// ReportLoss reports the device lost.
func (c *Client) ReportLoss(ctx context.Context, vendor, serial, key string, r WithReason) (Answer, error) {
	return c.command(ctx, http.MethodPost, dev(vendor, serial)+"/loss-reports", key, r)
}

// Recover ends the accident at institution.
func (c *Client) Recover(ctx context.Context, vendor, serial, institution, key string, r Attributed) (Answer, error) {
	return c.command(ctx, http.MethodPost, dev(vendor, serial)+"/loss-reports/"+url.PathEscape(institution)+"/recover", key, r)
}

// Error records one failed authentication.
func (c *Client) Error(ctx context.Context, vendor, serial, key string, r Common) (Answer, error) {
	return c.command(ctx, http.MethodPost, dev(vendor, serial)+"/errors", key, r)
}

// ResetErrors resets the device's error count.
func (c *Client) ResetErrors(ctx context.Context, vendor, serial, key string, r Attributed) (Answer, error) {
	return c.command(ctx, http.MethodPost, dev(vendor, serial)+"/errors/reset", key, r)
}

// IssueMobile issues (or reissues) the customer's mobile OTP.
func (c *Client) IssueMobile(ctx context.Context, customerNo, key string, r MobileIssue) (Answer, error) {
	return c.command(ctx, http.MethodPost, cust(customerNo)+"/mobile-otp", key, r)
}

// RevokeMobile revokes the customer's mobile OTP r.GeneratorNumber.
func (c *Client) RevokeMobile(ctx context.Context, customerNo, key string, r Revocation) (Answer, error) {
	return c.command(ctx, http.MethodPost, cust(customerNo)+"/mobile-otp/revoke", key, r)
}

// MobileError records one failed mobile PIN entry.
func (c *Client) MobileError(ctx context.Context, customerNo, key string, r Common) (Answer, error) {
	return c.command(ctx, http.MethodPost, cust(customerNo)+"/mobile-otp/errors", key, r)
}

// ResetMobileErrors reports a successful PIN entry (channel AUTH): the PIN
// error count back to 0.
func (c *Client) ResetMobileErrors(ctx context.Context, customerNo, key string, r Common) (Answer, error) {
	return c.command(ctx, http.MethodPost, cust(customerNo)+"/mobile-otp/errors/reset", key, r)
}

// Approve records the approval of a branch event by the client's principal,
// who must be a manager.
func (c *Client) Approve(ctx context.Context, eventID string) (Answer, error) {
	return c.command(ctx, http.MethodPost, "/v1/events/"+url.PathEscape(eventID)+"/approval", "", map[string]string{})
}

// DeviceErrors is the 2376 error count of a device.
type DeviceErrors struct {
	Count        int        `json:"count"`
	Locked       bool       `json:"locked"`
	LastErrorAt  *time.Time `json:"last_error_at"`
	LastResetAt  *time.Time `json:"last_reset_at"`
	AsOfSequence uint64     `json:"as_of_sequence"`
}

// DeviceErrors returns the device's error count once the views reach
// minSequence (0: now).
func (c *Client) DeviceErrors(ctx context.Context, vendor, serial string, minSequence uint64) (DeviceErrors, error) {
	return get[DeviceErrors](ctx, c, dev(vendor, serial)+"/errors", Read{MinSequence: minSequence}, nil)
}

// Key is an API key as the admin sees it (never its token).
type Key struct {
	ID          string     `json:"id"`
	Role        string     `json:"role"`
	Channels    []string   `json:"channels,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	CertSubject string     `json:"cert_subject,omitempty"`
	CertIssuer  string     `json:"cert_issuer,omitempty"`
	CertSHA256  string     `json:"cert_sha256,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	CreatedBy   string     `json:"created_by"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	RevokedBy   string     `json:"revoked_by,omitempty"`
}

// NewKey is what [Client.CreateKey] asks for.
type NewKey struct {
	ID        string     `json:"id"`
	Role      string     `json:"role"` // teller, manager, producer, auditor, operator, admin
	Channels  []string   `json:"channels,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// A client certificate bound to the key (mutual TLS): its subject and
	// issuer, each the base64 of its DER, and optionally the hex SHA-256 of
	// its public key.
	CertSubject string `json:"cert_subject,omitempty"`
	CertIssuer  string `json:"cert_issuer,omitempty"`
	CertSHA256  string `json:"cert_sha256,omitempty"`
}

// CreateKey creates an API key (admin) and returns it with its token, which
// exists nowhere else: hand it over and forget it.
func (c *Client) CreateKey(ctx context.Context, k NewKey) (Key, string, error) {
	var out struct {
		Key
		Token string `json:"token"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/keys", "", k, &out)
	return out.Key, out.Token, err
}

// Keys lists every key, revoked ones too (admin).
func (c *Client) Keys(ctx context.Context) ([]Key, error) {
	var out struct{ Items []Key }
	err := c.do(ctx, http.MethodGet, "/v1/keys", "", nil, &out)
	return out.Items, err
}

// RevokeKey revokes key id (admin).
func (c *Client) RevokeKey(ctx context.Context, id string) (Key, error) {
	var out Key
	err := c.do(ctx, http.MethodPost, "/v1/keys/"+url.PathEscape(id)+"/revoke", "", struct{}{}, &out)
	return out, err
}
