package aggregates

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
)

// The channel matrix of domain.md §5, transcribed by hand from the
// specification (never read from the policy): for each action, the
// channels a home customer may use, and the rule that refuses the others.
var specMatrix = map[Action]struct {
	channels []events.Channel
	refusal  RuleID
	agent    bool // a corporation's agent may act (in branch)
}{
	ActionRegister:          {[]events.Channel{events.ChannelBranch, events.ChannelHTS, events.ChannelWTS, events.ChannelMTS}, RuleChannel, true},
	ActionCancel:            {[]events.Channel{events.ChannelBranch, events.ChannelHTS, events.ChannelWTS, events.ChannelMTS}, RuleChannel, true},
	ActionErrorReset:        {[]events.Channel{events.ChannelBranch, events.ChannelMobileWeb}, RuleHWResetChannel, true},
	ActionLossReport:        {[]events.Channel{events.ChannelBranch, events.ChannelPhone, events.ChannelMTS, events.ChannelMobileWeb, events.ChannelHomepage}, RuleChannel, true},
	ActionRecovery:          {[]events.Channel{events.ChannelBranch, events.ChannelMobileWeb}, RuleChannel, true},
	ActionErrorIncrement:    {[]events.Channel{events.ChannelAuth}, RuleChannel, false},
	ActionMobileRevoke:      {[]events.Channel{events.ChannelBranch, events.ChannelMTS}, RuleMobRevokeChannel, false},
	ActionMobileIssue:       {[]events.Channel{events.ChannelMTS}, RuleMobVerify, false},
	ActionMobileErrorIncrem: {[]events.Channel{events.ChannelAuth}, RuleChannel, false},
	ActionMobileErrorReset:  {[]events.Channel{events.ChannelAuth}, RuleMobPINLock, false},
}

// matrixParty is who acts, for which kind of customer (domain.md §5, §6,
// R-AGENT).
type matrixParty struct {
	name      string
	role      events.Role
	corporate bool
}

var matrixParties = []matrixParty{
	{"individual", events.RoleSelf, false},
	{"individual's agent", events.RoleAgent, false},
	{"individual's 'representative'", events.RoleRepresentative, false},
	{"corporate representative", events.RoleRepresentative, true},
	{"corporation's agent", events.RoleAgent, true},
}

// matrixChannels are the channels a customer's action can arrive on at home.
var matrixChannels = []events.Channel{events.ChannelBranch, events.ChannelPhone, events.ChannelODS, events.ChannelHTS, events.ChannelWTS,
	events.ChannelMTS, events.ChannelMobileWeb, events.ChannelHomepage, events.ChannelAuth}

// expectedCell is the independent oracle: the rule that refuses the action
// on the channel by the party, or "" when the matrix allows it.
func expectedCell(a Action, ch events.Channel, p matrixParty) RuleID {
	spec := specMatrix[a]
	switch {
	case !slices.Contains(spec.channels, ch):
		return spec.refusal
	case p.role == events.RoleAgent && !p.corporate, p.role == events.RoleRepresentative && !p.corporate:
		return RuleAgent // 처리불가
	case p.role == events.RoleAgent && (!spec.agent || ch != events.ChannelBranch):
		return RuleAgent // mobile OTP accepts no agent; agents act in branch
	}
	return ""
}

// TestChannelMatrixEveryCell decides every action on every channel by every
// party, on a state where the action is otherwise possible and with every
// document presented, and compares with the oracle above.
func TestChannelMatrixEveryCell(t *testing.T) {
	t.Parallel()
	allDocs := []events.Document{events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney,
		events.DocCorporateSealCertificate, events.DocProcessingForm, events.DocSealOrSignature}
	cells := 0
	for _, a := range []Action{ActionRegister, ActionCancel, ActionErrorReset, ActionLossReport, ActionRecovery, ActionErrorIncrement,
		ActionMobileRevoke, ActionMobileIssue, ActionMobileErrorIncrem, ActionMobileErrorReset} {
		for _, ch := range matrixChannels {
			for _, p := range matrixParties {
				if a.mobile() && p.corporate || ch == events.ChannelAuth && p.role != events.RoleSelf {
					continue // mobile OTP is for individuals (R-MOB-ELIGIBLE); AUTH reports no customer's agent
				}
				m := Meta{EventID: cmdID, Institution: home, Channel: ch, Actor: events.Actor{Role: p.role, ID: "P1"}}
				if ch == events.ChannelBranch {
					m.Staff, m.Documents = "S100", allDocs
				}
				profile := profiled(events.Individual, events.Korean)
				if p.corporate {
					profile = profiled(events.Corporate, events.Korean)
				}
				cust := Fold(NewCustomer(custNo), flat(profile), time.Time{})
				var got error
				switch a {
				case ActionRegister:
					_, got = NewDevice("OTP", "000111222333").Decide(Register{Meta: m, CustomerNo: custNo, Customer: &cust}, now, &policy)
				case ActionCancel:
					c := Fold(cust, flat(hwMirror("000111222333")), time.Time{})
					_, got = deviceAt(reg(home)).Decide(Cancel{Meta: m, Customer: &c}, now, &policy)
				case ActionErrorReset:
					_, got = deviceAt(reg(home), errs(3, 10)).Decide(ResetErrors{Meta: m, Customer: &cust}, now, &policy)
				case ActionLossReport:
					_, got = deviceAt(reg(home)).Decide(ReportLoss{Meta: m, Reason: events.LossLost, Customer: &cust}, now, &policy)
				case ActionRecovery: // an in-branch recovery elsewhere opened online recovery at home
					_, got = deviceAt(reg(home), reg(instKB), lost(home, instKB), recovered(instKB, true)).Decide(Recover{Meta: m, Customer: &cust}, now, &policy)
				case ActionErrorIncrement:
					_, got = deviceAt(reg(home)).Decide(IncrementError{Meta: m}, now, &policy)
				case ActionMobileRevoke:
					c := Fold(cust, flat(mobileIssued(phoneA, now.AddDate(3, 0, 0))), time.Time{})
					_, got = c.Decide(RevokeMobile{Meta: m, GeneratorNo: "MOTP0001"}, now, &policy)
				case ActionMobileIssue:
					_, got = cust.Decide(IssueMobile{Meta: m, GeneratorNo: "MOTP0002", PhoneFP: phoneA, PhoneMasked: "****5678", Verification: verified}, now, &policy)
				case ActionMobileErrorIncrem:
					c := Fold(cust, flat(mobileIssued(phoneA, now.AddDate(3, 0, 0))), time.Time{})
					_, got = c.Decide(IncrementMobileError{Meta: m}, now, &policy)
				case ActionMobileErrorReset:
					c := Fold(cust, flat(mobileIssued(phoneA, now.AddDate(3, 0, 0)), pinErrs(2)), time.Time{})
					_, got = c.Decide(ResetMobileErrors{Meta: m}, now, &policy)
				}
				want := expectedCell(a, ch, p)
				if RuleOf(got) != want || (want == "" && got != nil) {
					t.Errorf("%s on %s by %s: got %v, want %s", a, ch, p.name, got, orAllowed(want))
				}
				cells++
			}
		}
	}
	t.Logf("%d cells", cells)
}

func deviceAt(evs ...any) Device {
	return Fold(NewDevice("OTP", "000111222333"), flat(evs...), time.Time{})
}

func orAllowed(r RuleID) string {
	if r == "" {
		return "allowed"
	}
	return fmt.Sprint(r)
}
