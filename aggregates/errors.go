package aggregates

import (
	"errors"
	"fmt"
)

// RuleID names a rule of domain.md §4. A refused command answers with it
// (API error.rule).
type RuleID string

// The rules of domain.md §4.
const (
	RuleHWNoIssue           RuleID = "R-HW-NO-ISSUE"
	RuleHWOnePerInstitution RuleID = "R-HW-ONE-PER-INSTITUTION"
	RuleHWLock              RuleID = "R-HW-LOCK"
	RuleHWResetAll          RuleID = "R-HW-RESET-ALL"
	RuleHWResetChannel      RuleID = "R-HW-RESET-CHANNEL"
	RuleHWLockedOnline      RuleID = "R-HW-LOCKED-ONLINE"
	RuleHWDiscarded         RuleID = "R-HW-DISCARDED"
	RuleHWLostAll           RuleID = "R-HW-LOST-ALL"
	RuleHWRecoverEach       RuleID = "R-HW-RECOVER-EACH"
	RuleHWRecoverOnline     RuleID = "R-HW-RECOVER-ONLINE"
	RuleHWLostBlocks        RuleID = "R-HW-LOST-BLOCKS"
	RuleHWValidity          RuleID = "R-HW-VALIDITY"
	RuleOneOTP              RuleID = "R-ONE-OTP"
	RuleOnePerson           RuleID = "R-ONE-PERSON"
	RuleProfile             RuleID = "R-PROFILE"
	RuleMobEligible         RuleID = "R-MOB-ELIGIBLE"
	RuleMobOnePhone         RuleID = "R-MOB-ONE-PHONE"
	RuleMobValidity         RuleID = "R-MOB-VALIDITY"
	RuleMobPINLock          RuleID = "R-MOB-PIN-LOCK"
	RuleMobVerify           RuleID = "R-MOB-VERIFY"
	RuleMobRevokeChannel    RuleID = "R-MOB-REVOKE-CHANNEL"
	RuleChannel             RuleID = "R-CHANNEL"
	RuleAgent               RuleID = "R-AGENT"
	RuleDocs                RuleID = "R-DOCS"
	RuleHours               RuleID = "R-HOURS"
	RuleApproval            RuleID = "R-APPROVAL"
)

// Rules lists every rule id.
var Rules = []RuleID{
	RuleHWNoIssue, RuleHWOnePerInstitution, RuleHWLock, RuleHWResetAll, RuleHWResetChannel,
	RuleHWLockedOnline, RuleHWDiscarded, RuleHWLostAll, RuleHWRecoverEach, RuleHWRecoverOnline,
	RuleHWLostBlocks, RuleHWValidity, RuleOneOTP, RuleMobEligible, RuleMobOnePhone, RuleMobValidity,
	RuleMobPINLock, RuleMobVerify, RuleMobRevokeChannel, RuleChannel, RuleAgent, RuleDocs, RuleHours,
	RuleApproval, RuleOnePerson, RuleProfile,
}

// RuleError is returned by Decide when a rule refuses a command. Message
// explains the refusal without personal data (codes and counts only).
// Check it with errors.As.
type RuleError struct {
	Rule    RuleID
	Message string
}

func (e *RuleError) Error() string { return string(e.Rule) + ": " + e.Message }

func refuse(rule RuleID, format string, args ...any) error {
	return &RuleError{Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// RuleOf returns the rule id of a refusal, or "" when err is not a [*RuleError].
func RuleOf(err error) RuleID {
	var re *RuleError
	if errors.As(err, &re) {
		return re.Rule
	}
	return ""
}

// ErrNoMobileOTP is returned by Customer.Decide for a mobile OTP command on a
// customer who has no active mobile OTP (API: 404).
var ErrNoMobileOTP = errors.New("customer has no active mobile OTP")

// ErrCustomerState is returned by Device.Decide for a registration or
// cancellation at the home institution when the command does not carry the
// customer's state: a programming error of the caller, never a user's.
var ErrCustomerState = errors.New("home registration or cancellation needs the customer's state")

// ErrDeviceState is returned by Customer.Decide for a mobile issuance to a
// customer with a hardware registration at home when the command does not
// carry that device's state ([IssueMobile.Device], see [ReplacedDevice]): a
// programming error of the caller, never a user's.
var ErrDeviceState = errors.New("mobile issuance replacing a hardware OTP needs the device's state")

// ErrNoProfile is returned by Customer.Decide for [ClaimRealName] on a
// customer without a profile: there is no real-name number to claim.
var ErrNoProfile = errors.New("customer has no profile on record")

// ErrClaimed is returned by Customer.Decide for [ClaimRealName] when the
// customer already holds the claim of its real-name number: nothing to do.
var ErrClaimed = errors.New("the customer already holds the claim of its real-name number")

// ErrPersonState is returned by Customer.Decide for a profile whose command
// does not carry the claim of its real-name number (SetProfile.Person): a
// programming error of the caller, never a user's.
var ErrPersonState = errors.New("a customer profile needs the claim of its real-name number")
