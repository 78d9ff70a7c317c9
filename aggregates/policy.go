package aggregates

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // business hours resolve their time zone on any machine

	"github.com/otpledger/otpledger/events"
)

// Action is a business action of the channel matrix (domain.md §5).
type Action string

// Actions.
const (
	ActionRegister          Action = "register"
	ActionCancel            Action = "cancel"
	ActionErrorReset        Action = "error_reset"
	ActionErrorIncrement    Action = "error_increment"
	ActionLossReport        Action = "loss_report"
	ActionRecovery          Action = "recovery"
	ActionMobileIssue       Action = "mobile_issue"
	ActionMobileRevoke      Action = "mobile_revoke"
	ActionMobileErrorReset  Action = "mobile_error_reset"
	ActionMobileErrorIncrem Action = "mobile_error_increment"
)

// deviceActions bypass the matrix on channel CENTER (domain.md §5): they are
// the other institutions' own actions, checked there.
var deviceActions = []Action{ActionRegister, ActionCancel, ActionErrorReset, ActionErrorIncrement, ActionLossReport, ActionRecovery}

func (a Action) mobile() bool { return strings.HasPrefix(string(a), "mobile_") }

// Party is the row of the documents table (domain.md §6): who acts for which
// kind of customer.
type Party string

// Parties. An individual's agent is refused by R-AGENT and has no row.
const (
	IndividualSelf          Party = "INDIVIDUAL_SELF"
	CorporateRepresentative Party = "CORPORATE_REPRESENTATIVE"
	CorporateAgent          Party = "CORPORATE_AGENT"
)

// BusinessHours is the branch calendar of R-HOURS.
type BusinessHours struct {
	Timezone string   `json:"timezone"`
	Open     string   `json:"open"`  // HH:MM, inclusive
	Close    string   `json:"close"` // HH:MM, exclusive; "24:00" is midnight
	Days     []string `json:"days"`  // MON … SUN
}

// OccurredAtBounds bound the occurred_at a centre feed sends (api.md): not
// more than MaxSkew ahead of the ledger's clock, not before Horizon, and
// never before the aggregate's previous event.
type OccurredAtBounds struct {
	MaxSkew string `json:"max_skew"` // a Go duration, e.g. "5m"
	Horizon string `json:"horizon"`  // YYYY-MM-DD (UTC)
}

// Policy is every number and table the rules read, as one value. The zero
// value is not usable: start from [DefaultPolicy] or [ParsePolicy]. A Policy
// is read-only after Validate and safe for concurrent use.
type Policy struct {
	HomeInstitution     string                                 `json:"home_institution"`
	DeviceErrorLimit    int                                    `json:"device_error_limit"`
	MobilePINLimit      int                                    `json:"mobile_pin_limit"`
	MobileValidityYears int                                    `json:"mobile_validity_years"`
	Channels            map[Action][]events.Channel            `json:"channels"`
	CorporateAgents     []Action                               `json:"corporate_agent_actions"`
	Documents           map[Action]map[Party][]events.Document `json:"documents"`
	BranchDocuments     []events.Document                      `json:"branch_documents"`
	Hours               BusinessHours                          `json:"business_hours"`
	Closings            []CalendarYear                         `json:"calendar"` // the market's closing days per year (R-HOURS)
	Holidays            []string                               `json:"holidays"` // extra closing days (YYYY-MM-DD, the calendar's zone), e.g. a temporary holiday
	OccurredAt          OccurredAtBounds                       `json:"occurred_at"`

	loc         *time.Location
	maxSkew     time.Duration
	horizon     time.Time
	open, close int // minutes after midnight
	days        [7]bool
	closed      map[string]bool // every closing day of Closings and Holidays
}

// DefaultPolicy returns the manual's values for the home institution home:
// limits 10 (device) and 5 (mobile PIN), mobile validity 3 years, the channel
// matrix of §5, the documents of §6, Mon–Fri 09:00–16:00 Asia/Seoul and the
// Korea Exchange's closing days of 2026 and 2027 (R-HOURS).
func DefaultPolicy(home string) Policy {
	rn, br, poa, seal := events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney, events.DocCorporateSealCertificate
	// domain.md §6: register/cancel and loss report share a row, recovery
	// and error reset another (the general agent adds the seal certificate).
	regDocs := map[Party][]events.Document{
		IndividualSelf: {rn}, CorporateRepresentative: {rn, br}, CorporateAgent: {rn, br, poa},
	}
	recoverDocs := map[Party][]events.Document{
		IndividualSelf: {rn}, CorporateRepresentative: {rn, br}, CorporateAgent: {rn, br, poa, seal},
	}
	p := Policy{
		HomeInstitution:     home,
		DeviceErrorLimit:    10,
		MobilePINLimit:      5,
		MobileValidityYears: 3,
		Channels: map[Action][]events.Channel{
			ActionRegister:          {events.ChannelBranch, events.ChannelHTS, events.ChannelWTS, events.ChannelMTS},
			ActionCancel:            {events.ChannelBranch, events.ChannelHTS, events.ChannelWTS, events.ChannelMTS},
			ActionErrorReset:        {events.ChannelBranch, events.ChannelMobileWeb},
			ActionErrorIncrement:    {events.ChannelAuth},
			ActionLossReport:        {events.ChannelBranch, events.ChannelPhone, events.ChannelMTS, events.ChannelMobileWeb, events.ChannelHomepage},
			ActionRecovery:          {events.ChannelBranch, events.ChannelMobileWeb},
			ActionMobileIssue:       {events.ChannelMTS},
			ActionMobileRevoke:      {events.ChannelBranch, events.ChannelMTS},
			ActionMobileErrorReset:  {events.ChannelAuth},
			ActionMobileErrorIncrem: {events.ChannelAuth},
		},
		CorporateAgents: []Action{ActionRegister, ActionCancel, ActionErrorReset, ActionLossReport, ActionRecovery},
		Documents: map[Action]map[Party][]events.Document{
			ActionRegister:     regDocs,
			ActionCancel:       regDocs,
			ActionLossReport:   regDocs,
			ActionRecovery:     recoverDocs,
			ActionErrorReset:   recoverDocs,
			ActionMobileRevoke: {IndividualSelf: {rn}},
		},
		BranchDocuments: []events.Document{events.DocProcessingForm, events.DocSealOrSignature},
		Hours:           BusinessHours{Timezone: "Asia/Seoul", Open: "09:00", Close: "16:00", Days: []string{"MON", "TUE", "WED", "THU", "FRI"}},
		Closings:        krxClosings(),
		OccurredAt:      OccurredAtBounds{MaxSkew: "5m", Horizon: "2000-01-01"},
	}
	if err := p.Validate(); err != nil {
		panic("aggregates: default policy invalid: " + err.Error())
	}
	return p
}

// ParsePolicy reads a JSON policy file over the defaults for home: fields the
// file leaves out keep the manual's values. Unknown fields are errors.
func ParsePolicy(data []byte, home string) (Policy, error) {
	p := DefaultPolicy(home)
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) == nil && fields["calendar"] != nil {
		p.Closings = nil // a file's calendar replaces the default one, never merges into its years
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return Policy{}, fmt.Errorf("parse policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("parse policy: %w", err)
	}
	return p, nil
}

var weekdays = map[string]time.Weekday{"SUN": time.Sunday, "MON": time.Monday, "TUE": time.Tuesday,
	"WED": time.Wednesday, "THU": time.Thursday, "FRI": time.Friday, "SAT": time.Saturday}

// Validate checks p and prepares its calendar, joining every problem found.
func (p *Policy) Validate() error {
	var errs []error
	if !events.ValidInstitution(p.HomeInstitution) {
		errs = append(errs, errors.New("home_institution must match "+events.InstitutionCode.Pattern))
	}
	if p.DeviceErrorLimit < 1 || p.MobilePINLimit < 1 {
		errs = append(errs, errors.New("device_error_limit and mobile_pin_limit must be at least 1"))
	}
	if p.MobileValidityYears < 1 {
		errs = append(errs, errors.New("mobile_validity_years must be at least 1"))
	}
	for a, chs := range p.Channels {
		for _, c := range chs {
			if !c.Valid() {
				errs = append(errs, fmt.Errorf("channels.%s: unknown channel %q", a, c))
			}
		}
	}
	loc, err := time.LoadLocation(p.Hours.Timezone)
	if err != nil {
		errs = append(errs, fmt.Errorf("business_hours.timezone: %w", err))
	}
	p.loc = loc
	var okOpen, okClose bool
	p.open, okOpen = clockMinutes(p.Hours.Open)
	p.close, okClose = clockMinutes(p.Hours.Close)
	if !okOpen || !okClose || p.open >= p.close {
		errs = append(errs, errors.New("business_hours: open and close must be HH:MM with open before close"))
	}
	p.days = [7]bool{}
	for _, d := range p.Hours.Days {
		wd, ok := weekdays[d]
		if !ok {
			errs = append(errs, fmt.Errorf("business_hours.days: unknown day %q", d))
		}
		p.days[wd] = ok
	}
	errs = append(errs, p.validateClosings()...)
	if p.maxSkew, err = time.ParseDuration(p.OccurredAt.MaxSkew); err != nil || p.maxSkew < 0 {
		errs = append(errs, fmt.Errorf("occurred_at.max_skew: %q is not a duration such as 5m", p.OccurredAt.MaxSkew))
	}
	if p.horizon, err = time.Parse(time.DateOnly, p.OccurredAt.Horizon); err != nil {
		errs = append(errs, fmt.Errorf("occurred_at.horizon: %q is not YYYY-MM-DD", p.OccurredAt.Horizon))
	}
	return errors.Join(errs...)
}

// checkOccurredAt bounds a command's own occurred_at t (zero: the ledger's
// clock decides, nothing to check) by the policy's horizon and its skew ahead
// of the ledger's time now. It may be earlier than the aggregate's previous
// event: the centre's feed is asynchronous, and a late event is recorded,
// never refused (domain.md, decisions of 2026-12-03).
func (p *Policy) checkOccurredAt(t, now time.Time) error {
	switch {
	case t.IsZero():
		return nil
	case t.After(now.Add(p.maxSkew)):
		return &events.FieldError{Field: "occurred_at", Reason: fmt.Sprintf("more than %v ahead of the ledger's clock", p.maxSkew)}
	case t.Before(p.horizon):
		return &events.FieldError{Field: "occurred_at", Reason: "before the ledger's horizon " + p.OccurredAt.Horizon}
	}
	return nil
}

func clockMinutes(s string) (int, bool) {
	if s == "24:00" { // a close at midnight: the whole day
		return 24 * 60, true
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

// BusinessTime reports whether t falls on a business day within business
// hours. A weekday of a year the calendar does not know counts as open
// ([Policy.Calendar] reports it).
func (p *Policy) BusinessTime(t time.Time) bool {
	local := t.In(p.loc)
	if !p.days[local.Weekday()] || p.closed[local.Format(time.DateOnly)] {
		return false
	}
	m := local.Hour()*60 + local.Minute()
	return m >= p.open && m < p.close
}

// MobileValidUntil returns when a mobile OTP issued at t expires (R-MOB-VALIDITY).
func (p *Policy) MobileValidUntil(t time.Time) time.Time {
	return t.AddDate(p.MobileValidityYears, 0, 0)
}

// channelRule is the rule that names a channel refusal of a: R-CHANNEL, or the
// action's own channel rule.
func channelRule(a Action) RuleID {
	switch a {
	case ActionErrorReset:
		return RuleHWResetChannel
	case ActionMobileRevoke:
		return RuleMobRevokeChannel
	case ActionMobileIssue:
		return RuleMobVerify // non-face-to-face only
	case ActionMobileErrorReset:
		return RuleMobPINLock // only the authentication service lowers the count
	}
	return RuleChannel
}

// party maps the acting role and customer type to a documents row; an
// individual's agent or representative is refused by R-AGENT.
func party(role events.Role, ct events.CustomerType) (Party, error) {
	switch {
	case ct == events.Corporate && role == events.RoleAgent:
		return CorporateAgent, nil
	case ct == events.Corporate:
		return CorporateRepresentative, nil
	case role == events.RoleAgent || role == events.RoleRepresentative:
		return "", refuse(RuleAgent, "an individual customer's agent cannot act (처리불가)")
	}
	return IndividualSelf, nil
}

// admit applies the rules every action shares, in order: where the channel may
// act (R-CHANNEL and the action's own channel rule), who may act (R-AGENT),
// and when (R-HOURS). ct is the acting customer's type ("" when unknown:
// treated as an individual).
func (p *Policy) admit(a Action, m Meta, ct events.CustomerType, now time.Time) error {
	if err := m.validate(p); err != nil {
		return err
	}
	home := m.Institution == p.HomeInstitution
	switch {
	case m.Channel == events.ChannelCenter && home:
		return refuse(RuleChannel, "channel CENTER carries other institutions' actions, not %s's", p.HomeInstitution)
	case m.Channel == events.ChannelCenter && slices.Contains(deviceActions, a):
		return nil // the other institution's own channels apply there
	case !home:
		return refuse(channelRule(a), "only channel CENTER may act for institution %s", m.Institution)
	case !slices.Contains(p.Channels[a], m.Channel):
		return refuse(channelRule(a), "%s is not allowed on channel %s", a, m.Channel)
	}
	switch m.Actor.Role {
	case events.RoleStaff, events.RoleSystem:
		if m.Channel != events.ChannelAuth {
			return refuse(RuleChannel, "role %s cannot act on channel %s", m.Actor.Role, m.Channel)
		}
	case events.RoleRepresentative:
		if ct != events.Corporate {
			return refuse(RuleAgent, "only a corporation has a representative")
		}
	case events.RoleAgent:
		switch {
		case a.mobile():
			return refuse(RuleAgent, "mobile OTP accepts no agent")
		case ct != events.Corporate:
			return refuse(RuleAgent, "an individual customer's agent cannot act (처리불가)")
		case !slices.Contains(p.CorporateAgents, a):
			return refuse(RuleAgent, "%s accepts no agent", a)
		case m.Channel != events.ChannelBranch:
			return refuse(RuleAgent, "agents act in branch only")
		}
	}
	if m.Channel == events.ChannelBranch && !p.BusinessTime(now) {
		return refuse(RuleHours, "branch actions only on business days within business hours")
	}
	return nil
}

// checkDocs applies R-DOCS to a branch action: the documents of §6 for the
// party, and the firm's own forms.
func (p *Policy) checkDocs(a Action, m Meta, ct events.CustomerType) error {
	if m.Channel != events.ChannelBranch {
		return nil
	}
	who, err := party(m.Actor.Role, ct)
	if err != nil {
		return err
	}
	rows, ok := p.Documents[a]
	if !ok {
		return nil
	}
	required, ok := rows[who]
	if !ok {
		return refuse(RuleDocs, "%s is not available to %s", a, who)
	}
	var missing []string
	for _, d := range append(slices.Clip(required), p.BranchDocuments...) {
		if !slices.Contains(m.Documents, d) {
			missing = append(missing, string(d))
		}
	}
	if len(missing) > 0 {
		return refuse(RuleDocs, "missing documents: %s", strings.Join(missing, ", "))
	}
	return nil
}
