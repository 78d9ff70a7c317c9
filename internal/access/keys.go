// Package access is otpledger's identity: the API keys, kept as events of
// the journal and followed by every server sharing it, the authentication of
// a request (API key, OpenID Connect token, client certificate) into an
// [events.Principal], and what each role may do (api.md "Identity and
// access").
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/otpledger/otpledger/events"
	"github.com/otpledger/otpledger/events/journal"
	"github.com/otpledger/otpledger/internal/securefile"
)

// Errors of authentication and key administration. None carries a token.
var (
	// ErrUnauthenticated: no credentials, or credentials that are unknown,
	// expired or revoked (API: 401).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrKeyExists: a key of that id is active; revoke it first (API: 409).
	ErrKeyExists = errors.New("an active key of that id exists; revoke it first")
	// ErrNoKey: no key of that id (API: 404).
	ErrNoKey = errors.New("no key of that id")
)

// TokenPrefix starts every API key token, so that a leaked one is easy to
// recognise (and to scan for).
const TokenPrefix = "otpl_"

// Key is an API key as the journal records it. Its token is never kept:
// only its SHA-256.
type Key struct {
	ID          string               `json:"id"`
	Role        events.PrincipalRole `json:"role"`
	Channels    []events.Channel     `json:"channels,omitempty"`
	ExpiresAt   *time.Time           `json:"expires_at,omitempty"`
	CertSubject string               `json:"cert_subject,omitempty"`
	CertIssuer  string               `json:"cert_issuer,omitempty"`
	CertSHA256  string               `json:"cert_sha256,omitempty"`
	CreatedAt   time.Time            `json:"created_at"`
	CreatedBy   string               `json:"created_by"`
	RevokedAt   *time.Time           `json:"revoked_at,omitempty"`
	RevokedBy   string               `json:"revoked_by,omitempty"`

	tokenHash string
	seq       uint64 // the last message seen on the key's subject, applied or not: the expectation of its next append
	head      string // the hash of the key's last applied event: the next one chains to it
}

// Active reports whether k may authenticate at t.
func (k Key) Active(t time.Time) bool {
	return k.RevokedAt == nil && (k.ExpiresAt == nil || t.Before(*k.ExpiresAt))
}

// Principal is the principal k authenticates as.
func (k Key) Principal(m events.AuthMethod) events.Principal {
	return events.Principal{ID: k.ID, Role: k.Role, Method: m}
}

// Keys holds every API key of the journal in memory, kept current by
// following the key subjects, so that a key created or revoked by any
// server sharing the journal takes effect here within milliseconds. It is
// safe for concurrent use.
type Keys struct {
	j    *journal.Journal
	home string
	now  func() time.Time

	mu       sync.RWMutex
	byID     map[string]Key
	byHash   map[string]string // token hash → key id
	seen     map[string]uint64 // key id → the last sequence seen on its subject, applied or a finding
	findings uint64            // key messages not applied (see apply)
	found    []KeyFinding      // the first maxFindings of them
}

// OpenKeys reads every key of the journal and follows it until ctx ends.
// home is the institution key events are recorded at; now the clock.
func OpenKeys(ctx context.Context, j *journal.Journal, home string, now func() time.Time) (*Keys, error) {
	k := &Keys{j: j, home: home, now: now, byID: map[string]Key{}, byHash: map[string]string{},
		seen: map[string]uint64{}}
	if err := j.Follow(ctx, events.KindKey, k.apply); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return k, nil
}

// apply folds one key message; a message this process already saw (its
// own append) is skipped. A message whose subject, chain and payload do not
// agree (a key_created stored under another key's subject, replayed,
// altered, undecodable, or not a key event) changes no key: it is a
// finding. Either way it is the subject's last message, so the key's next
// append expects its sequence (and chains from the last applied event):
// a message that is not the ledger's own never makes a key unrevocable.
func (k *Keys) apply(m journal.Message) {
	at, ok := events.ParseSubject(m.Subject)
	if !ok || at.Kind != events.KindKey {
		k.find(m, "not a key's subject")
		return
	}
	c, err := events.DecodeCommit(m.Data)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen[at.Key] >= m.Seq {
		return
	}
	k.seen[at.Key] = m.Seq
	cur, ok := k.byID[at.Key]
	if ok {
		cur.seq = m.Seq
		k.byID[at.Key] = cur
	}
	if err == nil && len(c.Events) == 0 {
		err = errors.New("a commit of no event")
	}
	if err != nil {
		k.findLocked(m, err.Error()) // the projector quarantines it too; a key it cannot read grants nothing
		return
	}
	prev := cur.head
	for _, e := range c.Events { // the whole commit agrees, or none of it is applied
		if problems := events.CheckStored(at, prev, e); len(problems) > 0 {
			k.findLocked(m, joinErrors(problems))
			return
		}
		switch e.Payload.(type) {
		case events.KeyCreated, events.KeyRevoked:
		default:
			k.findLocked(m, "not a key event")
			return
		}
		prev = e.Hash
	}
	for _, e := range c.Events {
		cur = k.fold(cur, at.Key, e)
	}
	cur.seq = m.Seq
	k.byID[at.Key] = cur
}

// fold applies one checked key event to cur, the key of id as known so far.
// Callers hold k.mu.
func (k *Keys) fold(cur Key, id string, e events.Event) Key {
	by := ""
	if e.Principal != nil {
		by = e.Principal.ID
	}
	switch p := e.Payload.(type) {
	case events.KeyCreated:
		delete(k.byHash, cur.tokenHash)
		cur = Key{ID: id, Role: p.Role, Channels: p.Channels, ExpiresAt: p.ExpiresAt, CertSubject: p.CertSubject,
			CertIssuer: p.CertIssuer, CertSHA256: p.CertSHA256, CreatedAt: e.OccurredAt, CreatedBy: by, tokenHash: p.TokenHash}
		k.byHash[p.TokenHash] = id
	case events.KeyRevoked:
		at := e.OccurredAt
		cur.RevokedAt, cur.RevokedBy = &at, by
		delete(k.byHash, cur.tokenHash)
	}
	cur.head = e.Hash
	return cur
}

func joinErrors(errs []error) string {
	out := make([]string, len(errs))
	for i, err := range errs {
		out[i] = err.Error()
	}
	return strings.Join(out, "; ")
}

// KeyFinding is a message on a key's subject that the key follower did not
// apply: its subject, chain and payload did not agree. It names the message
// and the problem, never a token or its hash.
type KeyFinding struct {
	Seq     uint64 `json:"sequence"`
	Subject string `json:"subject"`
	Problem string `json:"problem"`
}

// maxFindings bounds the findings Keys keeps (the count goes on).
const maxFindings = 100

func (k *Keys) find(m journal.Message, problem string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.findLocked(m, problem)
}

func (k *Keys) findLocked(m journal.Message, problem string) {
	k.findings++
	if len(k.found) < maxFindings {
		k.found = append(k.found, KeyFinding{Seq: m.Seq, Subject: m.Subject, Problem: problem})
	}
}

// Findings returns how many key messages were not applied since OpenKeys,
// and the first 100 of them: for /readyz, the metrics and the operator.
func (k *Keys) Findings() (uint64, []KeyFinding) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.findings, slices.Clone(k.found)
}

// HashToken returns the hex SHA-256 of a token: what the journal keeps. A
// token is 256 random bits, so a fast hash is enough.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Token authenticates an API key token. It returns [ErrUnauthenticated]
// (wrapped with why) for an unknown, expired or revoked one.
func (k *Keys) Token(token string) (Key, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return Key{}, fmt.Errorf("%w: not an API key", ErrUnauthenticated)
	}
	h := HashToken(token)
	k.mu.RLock()
	key, ok := k.byID[k.byHash[h]]
	k.mu.RUnlock()
	if !ok || subtle.ConstantTimeCompare([]byte(key.tokenHash), []byte(h)) != 1 {
		return Key{}, fmt.Errorf("%w: unknown or revoked token", ErrUnauthenticated)
	}
	if !key.Active(k.now()) {
		return Key{}, fmt.Errorf("%w: key %s expired", ErrUnauthenticated, key.ID)
	}
	return key, nil
}

// List returns every key, revoked ones too, by id; no token or hash.
func (k *Keys) List() []Key {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]Key, 0, len(k.byID))
	for _, id := range slices.Sorted(maps.Keys(k.byID)) {
		out = append(out, k.byID[id])
	}
	return out
}

// Get returns the key of id.
func (k *Keys) Get(id string) (Key, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.byID[id]
	return key, ok
}

// state returns the key of id as an append starts from: when there is no
// key, still the last sequence seen on its subject (a finding's).
func (k *Keys) state(id string) (Key, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	key, ok := k.byID[id]
	if !ok {
		key.seq = k.seen[id]
	}
	return key, ok
}

// NewKey is what [Keys.Create] records. Cert binds a client certificate
// (mutual TLS); zero: none.
type NewKey struct {
	ID        string
	Role      events.PrincipalRole
	Channels  []events.Channel
	ExpiresAt *time.Time
	Cert      CertBinding
}

// Create appends a new key for by and returns its token: the only time it
// exists outside the caller. A key id whose key is active is refused
// ([ErrKeyExists]); a revoked one may be created again (a new token). A
// certificate binding must be well formed and bind no certificate an
// active key binds ([ErrCertBound]).
func (k *Keys) Create(ctx context.Context, by events.Principal, nk NewKey) (string, Key, error) {
	token, err := newToken()
	if err != nil {
		return "", Key{}, err
	}
	key, err := k.create(ctx, by, nk, token)
	return token, key, err
}

// newToken draws a token: the prefix and 256 random bits.
func newToken() (string, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:]), nil
}

func (k *Keys) create(ctx context.Context, by events.Principal, nk NewKey, token string) (Key, error) {
	if !events.ValidKeyID(nk.ID) {
		return Key{}, events.KeyIDCode.Refusal("id")
	}
	if nk.ExpiresAt != nil && !nk.ExpiresAt.After(k.now()) {
		return Key{}, &events.FieldError{Field: "expires_at", Reason: "must be in the future"}
	}
	cert, err := nk.Cert.canonical()
	if err != nil {
		return Key{}, err
	}
	cur, exists := k.state(nk.ID)
	if exists && cur.RevokedAt == nil {
		return Key{}, ErrKeyExists
	}
	if other := k.boundElsewhere(nk.ID, cert, k.now()); other != "" {
		return Key{}, fmt.Errorf("%w (key %s)", ErrCertBound, other)
	}
	var expires *time.Time
	if nk.ExpiresAt != nil {
		t := nk.ExpiresAt.UTC()
		expires = &t
	}
	payload := events.KeyCreated{Role: nk.Role, Channels: nk.Channels, ExpiresAt: expires, TokenHash: HashToken(token),
		CertSubject: cert.Subject, CertIssuer: cert.Issuer, CertSHA256: cert.SHA256}
	if err := k.append(ctx, by, nk.ID, cur, payload); err != nil {
		return Key{}, err
	}
	key, _ := k.Get(nk.ID)
	return key, nil
}

// Revoke appends the revocation of key id by by. Revoking a revoked key
// changes nothing.
func (k *Keys) Revoke(ctx context.Context, by events.Principal, id string) (Key, error) {
	cur, ok := k.state(id)
	switch {
	case !ok:
		return Key{}, ErrNoKey
	case cur.RevokedAt != nil:
		return cur, nil
	}
	if err := k.append(ctx, by, id, cur, events.KeyRevoked{}); err != nil {
		return Key{}, err
	}
	key, _ := k.Get(id)
	return key, nil
}

// append writes one key event after cur, the key as this server knows it
// (its subject expected at cur's sequence, the event chained to cur's last
// hash: a server that knows an older state loses the compare-and-set), and
// applies it here at once (other servers see it through Follow).
func (k *Keys) append(ctx context.Context, by events.Principal, id string, cur Key, p events.Payload) error {
	now := k.now().UTC()
	e := events.Event{ID: uuid.New(), OccurredAt: now, RecordedAt: now, Aggregate: events.KeyRef(id), Institution: k.home,
		Channel: events.ChannelAdmin, Actor: events.Actor{Role: events.RoleSystem, ID: by.ID}, Principal: &by, Payload: p}
	if err := e.Validate(); err != nil {
		return err
	}
	evs, _, err := events.Chain(cur.head, []events.Event{e})
	if err != nil {
		return err
	}
	c := events.Commit{Events: evs}
	seqs, err := k.j.Append(ctx, journal.Record{Commit: c, Expect: cur.seq, MsgID: e.ID.String()})
	if errors.Is(err, journal.ErrConflict) {
		return fmt.Errorf("key %s changed meanwhile, try again: %w", id, err)
	}
	if err != nil {
		return err
	}
	data, err := events.EncodeCommit(c)
	if err != nil {
		return err
	}
	k.apply(journal.Message{Seq: seqs[0], Subject: events.Subject(e.Aggregate), Data: data})
	return nil
}

// TokenFile is where the first start writes the bootstrap admin token.
const TokenFile = "admin.token"

// Bootstrap creates the first admin key when the journal has none at all,
// and writes its token to dir/admin.token (mode 0600, a new file renamed
// into place: never through a symbolic link, never keeping an old file's
// mode). It returns the file's path, or "" when keys exist already (another
// server, or an earlier start, made them).
func (k *Keys) Bootstrap(ctx context.Context, dir string) (string, error) {
	k.mu.RLock()
	n := len(k.byID)
	k.mu.RUnlock()
	if n > 0 {
		return "", nil
	}
	token, err := newToken()
	if err != nil {
		return "", err
	}
	// The file first: a key whose token nobody holds would lock everyone out.
	path := filepath.Join(dir, TokenFile)
	if err := securefile.Write(path, []byte(token+"\n")); err != nil {
		return "", fmt.Errorf("bootstrap admin key: %w", err)
	}
	by := events.Principal{ID: "otpledger", Role: events.RoleAdmin, Method: events.MethodBootstrap}
	_, err = k.create(ctx, by, NewKey{ID: "admin", Role: events.RoleAdmin}, token)
	if err != nil {
		_ = os.Remove(path)
	}
	if errors.Is(err, journal.ErrConflict) || errors.Is(err, ErrKeyExists) {
		return "", nil // another server bootstrapped at the same moment
	}
	if err != nil {
		return "", fmt.Errorf("bootstrap admin key: %w", err)
	}
	return path, nil
}
