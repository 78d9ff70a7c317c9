package aggregates

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
)

type customerCase = ruleCase[Customer, CustomerCommand]

var (
	verified   = events.Verification{HomeAccount: true, PhoneIdentity: true, OneWonTransfer: true}
	issued     = []events.Type{events.TypeMobileIssued}
	reissued   = []events.Type{events.TypeMobileRevoked, events.TypeMobileIssued}
	domestic   = profiled(events.Individual, events.Korean)
	validUntil = now.AddDate(3, 0, 0)
	expiredAt  = now.Add(-time.Minute)
)

var (
	otherFP   = "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
	claimed   = []events.Type{events.TypeCustomerProfiled, events.TypePersonClaimed}
	unclaimed = NewPerson(rnFP)
)

// profile is a profile of the tests' customer with fingerprint fp, whose
// claim is person.
func profile(m Meta, t events.CustomerType, n events.Nationality, fp string, person Person) SetProfile {
	return SetProfile{Meta: m, Person: &person, Type: t, Nationality: n, RealNameFP: fp, RealNameMasked: "900101-1******", Accounts: []string{"12345678901"}}
}

// claimedBy is the tests' real-name number claimed by customer no.
func claimedBy(no string) Person {
	return Person{Ref: events.PersonRef(rnFP), Version: 1, CustomerNo: no}
}

func unclaimedAs(fp string) Person { return NewPerson(fp) }

// core is the meta of the customer master's feed (R-PROFILE).
func core() Meta {
	return Meta{EventID: cmdID, Institution: home, Channel: events.ChannelCore, Actor: events.Actor{Role: events.RoleSystem, ID: "CORE"}}
}

func issueMTS(phone string, v events.Verification) IssueMobile {
	return IssueMobile{Meta: online(events.ChannelMTS), GeneratorNo: "MOTP0002", PhoneFP: phone, PhoneMasked: "*******5678", Verification: v}
}

func issueOn(m Meta) IssueMobile {
	return IssueMobile{Meta: m, GeneratorNo: "MOTP0002", PhoneFP: phoneA, PhoneMasked: "*******5678", Verification: verified}
}

func revoke(m Meta) RevokeMobile { return RevokeMobile{Meta: m, GeneratorNo: "MOTP0001"} }

func revokeReason(want events.RevokeReason) func(t *testing.T, c Customer, evs []events.Event) {
	return func(t *testing.T, c Customer, evs []events.Event) {
		if got := evs[0].Payload.(events.MobileRevoked).Reason; got != want {
			t.Fatalf("revoke reason %s, want %s", got, want)
		}
		after := Fold(c, evs, time.Time{})
		if !after.Mobile.Active || after.Mobile.GeneratorNo != "MOTP0002" || after.Mobile.Errors != 0 {
			t.Fatalf("after reissue: %+v", after.Mobile)
		}
	}
}

// replacing issues a mobile OTP on MTS to a customer whose hardware OTP d is
// registered at home (R-ONE-OTP).
func replacing(d Device) IssueMobile {
	c := issueMTS(phoneA, verified)
	c.Device = &d
	return c
}

var replaced = []events.Type{events.TypeCancelled, events.TypeCancelled, events.TypeMobileIssued}

// replacedHardware checks a mobile issuance that replaced the customer's
// hardware OTP at home: the registration's end on both aggregates (reason
// REPLACED_BY_MOBILE, the device's caused by the customer's), the other
// institutions untouched, then the issuance.
func replacedHardware(t *testing.T, c Customer, evs []events.Event) {
	t.Helper()
	for i, ref := range []events.AggregateRef{custRef, devRef} {
		p, ok := evs[i].Payload.(events.Cancelled)
		if !ok || evs[i].Aggregate != ref || p.Reason != events.CancelReplacedByMobile || p.Serial != "000111222333" || p.CustomerNo != custNo || evs[i].Institution != home {
			t.Fatalf("event %d: %+v", i, evs[i])
		}
	}
	if evs[1].CausationID != evs[0].ID.String() {
		t.Fatalf("the device's cancellation is not caused by the customer's: %+v", evs[1])
	}
	after := Fold(c, only(custRef, evs), time.Time{})
	if after.Hardware.Active || !after.Mobile.Active || after.Mobile.GeneratorNo != "MOTP0002" {
		t.Fatalf("customer after the replacement: %+v", after)
	}
	d := Fold(deviceAt(reg(home), reg(instKB)), only(devRef, evs), time.Time{})
	if _, atHome := d.Registrations[home]; atHome || len(d.Registrations) != 1 {
		t.Fatalf("device after the replacement: registered at %v, want %s only", d.Registrations, instKB)
	}
}

func TestCustomerRules(t *testing.T) {
	t.Parallel()
	active := flat(domestic, mobileIssued(phoneA, validUntil))
	expired := flat(domestic, mobileIssued(phoneA, expiredAt))
	cases := []customerCase{
		// R-ONE-OTP
		{name: "R-ONE-OTP allowed: a mobile OTP replaces the hardware OTP at home in the same append", given: flat(domestic, hwMirror("000111222333")),
			when: replacing(deviceAt(reg(home), reg(instKB))), want: replaced, check: replacedHardware},
		{name: "R-ONE-OTP allowed: verified with the hardware OTP it replaces", given: flat(domestic, hwMirror("000111222333")),
			when: func() IssueMobile {
				c := replacing(deviceAt(reg(home)))
				c.Verification = events.Verification{HomeAccount: true, PhoneIdentity: true, OTPOrSecurityCard: true}
				return c
			}(), want: replaced, check: replacedHardware},
		{name: "R-ONE-OTP refused: the replacement still needs the mobile OTP's own rules", given: flat(profiled(events.Corporate, events.Korean), hwMirror("000111222333")),
			when: replacing(deviceAt(reg(home))), rule: RuleMobEligible},
		{name: "R-ONE-OTP allowed: mobile after the hardware was cancelled", given: flat(domestic, hwMirror("000111222333"), hwMirrorCancelled("000111222333")), when: issueMTS(phoneA, verified), want: issued},
		{name: "R-ONE-OTP allowed: a reissue is not a second OTP", given: active, when: issueMTS(phoneB, verified), want: reissued},

		// R-HW-LOST-BLOCKS (the device a mobile OTP would replace)
		{name: "R-HW-LOST-BLOCKS refused: a device in accident blocks the mobile OTP that would replace it", given: flat(domestic, hwMirror("000111222333")),
			when: replacing(deviceAt(reg(home), reg(instKB), lost(home, instKB))), rule: RuleHWLostBlocks},
		{name: "R-HW-LOST-BLOCKS allowed: once recovered everywhere, the mobile OTP replaces it", given: flat(domestic, hwMirror("000111222333")),
			when: replacing(deviceAt(reg(home), reg(instKB), lost(home, instKB), recovered(home, true), recovered(instKB, true))), want: replaced, check: replacedHardware},

		// R-MOB-ELIGIBLE
		{name: "R-MOB-ELIGIBLE refused: a corporation", given: flat(profiled(events.Corporate, events.Korean)), when: issueMTS(phoneA, verified), rule: RuleMobEligible},
		{name: "R-MOB-ELIGIBLE refused: a foreigner", given: flat(profiled(events.Individual, events.NonKorean)), when: issueMTS(phoneA, verified), rule: RuleMobEligible},
		{name: "R-MOB-ELIGIBLE refused: no profile on record", when: issueMTS(phoneA, verified), rule: RuleMobEligible},
		{name: "R-MOB-ELIGIBLE allowed: a domestic individual", given: flat(domestic), when: issueMTS(phoneA, verified), want: issued},
		{name: "R-MOB-ELIGIBLE allowed: a Korean national living abroad (profiled by residency FOREIGN is a foreigner; by nationality KOREAN eligible)",
			given: flat(profiled(events.Individual, events.Korean)), when: issueMTS(phoneA, verified), want: issued},
		{name: "R-MOB-ELIGIBLE refused: a foreigner living in Korea, and the refusal says 내국인", given: flat(profiled(events.Individual, events.NonKorean)), when: issueMTS(phoneA, verified), rule: RuleMobEligible},
		{name: "R-MOB-ELIGIBLE allowed: nationality may change (a foreigner naturalised), and then a mobile OTP is issued",
			given: flat(profiled(events.Individual, events.NonKorean)), when: profile(branch(), events.Individual, events.Korean, rnFP, claimedBy(custNo)),
			want: []events.Type{events.TypeCustomerProfiled},
			check: func(t *testing.T, c Customer, evs []events.Event) {
				if _, err := Fold(c, evs, time.Time{}).Decide(issueMTS(phoneA, verified), now, &policy); err != nil {
					t.Fatalf("a Korean national's mobile OTP refused: %v", err)
				}
			}},

		// R-PROFILE
		{name: "R-PROFILE allowed: from the customer master (CORE)", when: profile(core(), events.Individual, events.Korean, rnFP, unclaimed), want: claimed},
		{name: "R-PROFILE allowed: from the customer master out of branch hours", when: profile(core(), events.Individual, events.Korean, rnFP, unclaimed), at: evening, want: claimed},
		{name: "R-PROFILE allowed: a teller with the real-name ID and the processing form, no seal needed",
			when: profile(withDocs(branch(), events.DocRealNameID, events.DocProcessingForm), events.Corporate, events.Korean, rnFP, unclaimed), want: claimed,
			check: func(t *testing.T, c Customer, evs []events.Event) {
				if evs[0].Approvable() || evs[1].Approvable() || len(Fold(c, evs, time.Time{}).Pending) != 0 {
					t.Fatal("a profile is not an OTP transaction: nothing to approve")
				}
			}},
		{name: "R-PROFILE allowed: nationality and accounts change", given: flat(domestic),
			when: func() SetProfile {
				c := profile(core(), events.Individual, events.NonKorean, rnFP, claimedBy(custNo))
				c.Accounts = []string{"12345678901", "10987654321"}
				return c
			}(), want: []events.Type{events.TypeCustomerProfiled}},
		{name: "R-PROFILE refused: an AUTH producer", when: profile(auth(), events.Corporate, events.Korean, rnFP, unclaimed), rule: RuleProfile},
		{name: "R-PROFILE refused: an AUTH producer rewriting an individual into a corporation", given: flat(domestic),
			when: profile(auth(), events.Corporate, events.Korean, rnFP, claimedBy(custNo)), rule: RuleProfile},
		{name: "R-PROFILE refused: the phone channel", given: flat(domestic), when: profile(online(events.ChannelPhone), events.Corporate, events.Korean, rnFP, claimedBy(custNo)), rule: RuleProfile},
		{name: "R-PROFILE refused: an online front end", when: profile(online(events.ChannelMTS), events.Individual, events.Korean, rnFP, unclaimed), rule: RuleProfile},
		{name: "R-PROFILE refused: the centre, for the home institution", given: flat(domestic),
			when: profile(func() Meta { m := center(instKB, ""); m.Institution = home; return m }(), events.Corporate, events.Korean, rnFP, claimedBy(custNo)), rule: RuleProfile},
		{name: "R-PROFILE refused: the type never changes, even from the customer master", given: flat(domestic),
			when: profile(core(), events.Corporate, events.Korean, rnFP, claimedBy(custNo)), rule: RuleProfile},
		{name: "R-PROFILE refused: the type never changes, even in branch", given: flat(profiled(events.Corporate, events.Korean)),
			when: profile(branch(), events.Individual, events.Korean, rnFP, claimedBy(custNo)), rule: RuleProfile},
		{name: "R-PROFILE refused: the real-name number never changes", given: flat(domestic),
			when: profile(core(), events.Individual, events.Korean, otherFP, unclaimedAs(otherFP)), rule: RuleProfile},
		{name: "R-PROFILE refused: a branch profile without the processing form (R-DOCS names it)",
			when: profile(withDocs(branch(), events.DocRealNameID), events.Individual, events.Korean, rnFP, unclaimed), rule: RuleDocs},
		{name: "R-PROFILE refused: a branch profile after closing (R-HOURS)", when: profile(branch(), events.Individual, events.Korean, rnFP, unclaimed), at: evening, rule: RuleHours},

		// R-ONE-PERSON
		{name: "R-ONE-PERSON allowed: the first customer number of a person claims its real-name number", when: profile(branch(), events.Individual, events.Korean, rnFP, unclaimed),
			want: claimed,
			check: func(t *testing.T, _ Customer, evs []events.Event) {
				if evs[1].Aggregate != events.PersonRef(rnFP) || evs[1].Payload.(events.PersonClaimed).CustomerNo != custNo {
					t.Fatalf("claim %+v", evs[1])
				}
				if p := NewPerson(rnFP).Evolve(evs[1]); p.CustomerNo != custNo || p.AggregateVersion() != 1 {
					t.Fatalf("the claim folds to %+v", p)
				}
			}},
		{name: "R-ONE-PERSON allowed: a customer number profiled again keeps its claim, appending no new one", given: flat(domestic),
			when: profile(branch(), events.Individual, events.Korean, rnFP, claimedBy(custNo)), want: []events.Type{events.TypeCustomerProfiled}},
		{name: "R-ONE-PERSON refused: a real-name number already another customer number's, naming it",
			when: profile(core(), events.Individual, events.Korean, rnFP, claimedBy("C9999")), rule: RuleOnePerson},
		{name: "R-ONE-PERSON allowed: a customer profiled before the rule claims its real-name number from the customer master", given: flat(domestic),
			when: ClaimRealName{Meta: core(), Person: &unclaimed}, want: []events.Type{events.TypePersonClaimed}},
		{name: "R-ONE-PERSON refused: a late claim of a real-name number another customer number holds (a duplicate from before the rule)", given: flat(domestic),
			when: ClaimRealName{Meta: core(), Person: func() *Person { p := claimedBy("C9999"); return &p }()}, rule: RuleOnePerson},
		{name: "R-PROFILE refused: a late claim through the authentication service", given: flat(domestic),
			when: ClaimRealName{Meta: auth(), Person: &unclaimed}, rule: RuleProfile},
		{name: "R-ONE-PERSON refused: in branch too", when: profile(branch(), events.Corporate, events.Korean, rnFP, claimedBy("C9999")), rule: RuleOnePerson},

		// R-MOB-ONE-PHONE
		{name: "R-MOB-ONE-PHONE allowed: issuing on another phone revokes the old one in the same commit", given: active, when: issueMTS(phoneB, verified), want: reissued, check: revokeReason(events.RevokeSuperseded)},
		{name: "R-MOB-ONE-PHONE refused: issuing again on the same phone while active", given: active, when: issueMTS(phoneA, verified), rule: RuleMobOnePhone},

		// R-MOB-VALIDITY
		{name: "R-MOB-VALIDITY allowed: valid three years from issuance", given: flat(domestic), when: issueMTS(phoneA, verified), want: issued,
			check: func(t *testing.T, _ Customer, evs []events.Event) {
				if got := evs[0].Payload.(events.MobileIssued).ValidUntil; !got.Equal(time.Date(2029, 11, 25, 1, 0, 0, 0, time.UTC)) {
					t.Fatalf("valid until %v", got)
				}
			}},
		{name: "R-MOB-VALIDITY allowed: errors on an expired OTP are still recorded", given: expired, when: IncrementMobileError{Meta: auth()}, want: []events.Type{events.TypeErrorIncremented}},
		{name: "R-MOB-VALIDITY allowed: the customer revokes an expired OTP", given: expired, when: revoke(online(events.ChannelMTS)), want: []events.Type{events.TypeMobileRevoked}},
		{name: "R-MOB-VALIDITY allowed: reissue after expiry", given: expired, when: issueMTS(phoneA, verified), want: reissued, check: revokeReason(events.RevokeExpired)},
		{name: "R-MOB-VALIDITY refused: reset of an expired OTP", given: flat(expired, pinErrs(2)), when: ResetMobileErrors{Meta: auth()}, rule: RuleMobValidity},

		// R-MOB-PIN-LOCK
		{name: "R-MOB-PIN-LOCK allowed: the fifth PIN error locks", given: flat(active, pinErrs(4)), when: IncrementMobileError{Meta: auth()}, want: []events.Type{events.TypeErrorIncremented},
			check: func(t *testing.T, c Customer, evs []events.Event) {
				if p := evs[0].Payload.(events.ErrorIncremented); p.CountAfter != 5 || !p.Locked || !c.Evolve(evs[0]).Mobile.Locked {
					t.Fatalf("fifth error: %+v", p)
				}
			}},
		{name: "R-MOB-PIN-LOCK refused: a PIN error while locked", given: flat(active, pinErrs(5)), when: IncrementMobileError{Meta: auth()}, rule: RuleMobPINLock},
		{name: "R-MOB-PIN-LOCK refused: a successful PIN entry does not unlock", given: flat(active, pinErrs(5)), when: ResetMobileErrors{Meta: auth()}, rule: RuleMobPINLock},
		{name: "R-MOB-PIN-LOCK refused: the customer lowers the count on MTS", given: flat(active, pinErrs(3)), when: ResetMobileErrors{Meta: online(events.ChannelMTS)}, rule: RuleMobPINLock},
		{name: "R-MOB-PIN-LOCK refused: a branch lowers the count", given: flat(active, pinErrs(3)), when: ResetMobileErrors{Meta: branch()}, rule: RuleMobPINLock},
		{name: "R-MOB-PIN-LOCK allowed: a successful PIN entry below the limit, reported by AUTH", given: flat(active, pinErrs(3)), when: ResetMobileErrors{Meta: auth()}, want: []events.Type{events.TypeErrorReset},
			check: func(t *testing.T, c Customer, evs []events.Event) {
				if after := c.Evolve(evs[0]); after.Mobile.Errors != 0 || evs[0].Payload.(events.ErrorReset).CountBefore != 3 {
					t.Fatalf("after a successful PIN entry: %+v", after.Mobile)
				}
			}},
		{name: "R-MOB-PIN-LOCK allowed: a locked OTP is reissued on the same phone", given: flat(active, pinErrs(5)), when: issueMTS(phoneA, verified), want: reissued, check: revokeReason(events.RevokeLocked)},

		// R-MOB-VERIFY
		{name: "R-MOB-VERIFY refused: no 1-won transfer nor OTP/security card", given: flat(domestic), when: issueMTS(phoneA, events.Verification{HomeAccount: true, PhoneIdentity: true}), rule: RuleMobVerify},
		{name: "R-MOB-VERIFY refused: no phone identity", given: flat(domestic), when: issueMTS(phoneA, events.Verification{HomeAccount: true, OneWonTransfer: true}), rule: RuleMobVerify},
		{name: "R-MOB-VERIFY refused: no home account", given: flat(domestic), when: issueMTS(phoneA, events.Verification{PhoneIdentity: true, OTPOrSecurityCard: true}), rule: RuleMobVerify},
		{name: "R-MOB-VERIFY refused: in branch, even with the real-name ID (non-face-to-face only)", given: flat(domestic), when: issueOn(branch()), rule: RuleMobVerify},
		{name: "R-MOB-VERIFY refused: on HTS", given: flat(domestic), when: issueOn(online(events.ChannelHTS)), rule: RuleMobVerify},
		{name: "R-MOB-VERIFY refused: through the centre", given: flat(domestic), when: issueOn(center(instKB, "")), rule: RuleMobVerify},
		{name: "R-MOB-VERIFY allowed: OTP or security card instead of the transfer", given: flat(domestic), when: issueMTS(phoneA, events.Verification{HomeAccount: true, PhoneIdentity: true, OTPOrSecurityCard: true}), want: issued,
			check: func(t *testing.T, _ Customer, evs []events.Event) {
				if v := evs[0].Payload.(events.MobileIssued).Verification; v == nil || !v.OTPOrSecurityCard {
					t.Fatalf("verification evidence not recorded: %+v", v)
				}
			}},

		// R-MOB-REVOKE-CHANNEL
		{name: "R-MOB-REVOKE-CHANNEL allowed: MTS", given: active, when: revoke(online(events.ChannelMTS)), want: []events.Type{events.TypeMobileRevoked},
			check: func(t *testing.T, c Customer, evs []events.Event) {
				if c.Evolve(evs[0]).Mobile.Active {
					t.Fatal("still active after revocation")
				}
			}},
		{name: "R-MOB-REVOKE-CHANNEL allowed: branch", given: active, when: revoke(branch()), want: []events.Type{events.TypeMobileRevoked}},
		{name: "R-MOB-REVOKE-CHANNEL refused: phone", given: active, when: revoke(online(events.ChannelPhone)), rule: RuleMobRevokeChannel},
		{name: "R-MOB-REVOKE-CHANNEL refused: HTS", given: active, when: revoke(online(events.ChannelHTS)), rule: RuleMobRevokeChannel},
		{name: "R-MOB-REVOKE-CHANNEL refused: a stale generator number from before a reissue", given: flat(active, mobileIssued(phoneB, validUntil)),
			when: RevokeMobile{Meta: branch(), GeneratorNo: "MOTP0000"}, rule: RuleMobRevokeChannel},

		// R-CHANNEL
		{name: "R-CHANNEL refused: a PIN error reported on MTS", given: active, when: IncrementMobileError{Meta: online(events.ChannelMTS)}, rule: RuleChannel},
		{name: "R-CHANNEL refused: a profile for another institution", when: profile(center(instKB, ""), events.Individual, events.Korean, rnFP, unclaimed), rule: RuleChannel},
		{name: "R-CHANNEL allowed: a profile at home", when: profile(branch(), events.Individual, events.Korean, rnFP, unclaimed),
			want: claimed},

		// R-AGENT
		{name: "R-AGENT refused: an agent revoking a mobile OTP", given: active, when: revoke(agent(events.DocRealNameID)), rule: RuleAgent},
		{name: "R-AGENT refused: an agent issuing a mobile OTP", given: flat(domestic), when: issueOn(func() Meta { m := online(events.ChannelMTS); m.Actor.Role = events.RoleAgent; return m }()), rule: RuleAgent},
		{name: "R-AGENT allowed: the customer revokes in branch", given: active, when: revoke(branch()), want: []events.Type{events.TypeMobileRevoked}},

		// R-DOCS
		{name: "R-DOCS refused: branch revocation without the seal or signature", given: active, when: revoke(withDocs(branch(), events.DocRealNameID, events.DocProcessingForm)), rule: RuleDocs},
		{name: "R-DOCS refused: branch revocation without the real-name ID", given: active, when: revoke(withDocs(branch(), events.DocProcessingForm, events.DocSealOrSignature)), rule: RuleDocs},
		{name: "R-DOCS allowed: MTS revocation needs no documents", given: active, when: revoke(online(events.ChannelMTS)), want: []events.Type{events.TypeMobileRevoked}},

		// R-HOURS
		{name: "R-HOURS refused: branch revocation after closing", given: active, when: revoke(branch()), at: evening, rule: RuleHours},
		{name: "R-HOURS refused: branch revocation on the market's year-end closing day", given: active, when: revoke(branch()), at: yearEnd, rule: RuleHours},
		{name: "R-HOURS allowed: MTS issuance on Sunday night", given: flat(domestic), when: issueMTS(phoneA, verified), at: sundayLate, want: issued},

		// R-APPROVAL
		{name: "R-APPROVAL allowed: approving a branch revocation", given: flat(active, fact(custRef, home, events.ChannelBranch, events.MobileRevoked{GeneratorNo: "MOTP0001", Reason: events.RevokeCustomerRequest})),
			when: Approve{Meta: branch(), Target: fact(custRef, home, events.ChannelBranch, events.MobileRevoked{GeneratorNo: "MOTP0001", Reason: events.RevokeCustomerRequest}).ID, Approver: "M200"}, want: []events.Type{events.TypeApproved}},
		{name: "R-APPROVAL refused: the customer's copy of a home registration is approved through the device", given: flat(domestic, hwMirror("000111222333")),
			when: Approve{Meta: branch(), Target: hwMirror("000111222333").ID, Approver: "M200"}, rule: RuleApproval},
		{name: "R-APPROVAL refused: a customer profile is not a branch OTP transaction", given: flat(domestic),
			when: Approve{Meta: branch(), Target: domestic.ID, Approver: "M200"}, rule: RuleApproval},
		{name: "R-APPROVAL refused: an online event", given: active, when: Approve{Meta: branch(), Target: mobileIssued(phoneA, validUntil).ID, Approver: "M200"}, rule: RuleApproval},
	}
	runRules(t, NewCustomer(custNo), Customer.Decide, cases)
}

func TestCustomerWithoutMobile(t *testing.T) {
	t.Parallel()
	c := Fold(NewCustomer(custNo), flat(domestic), time.Time{})
	for _, cmd := range []CustomerCommand{revoke(online(events.ChannelMTS)), IncrementMobileError{Meta: auth()}, ResetMobileErrors{Meta: auth()}} {
		if _, err := c.Decide(cmd, now, &policy); !errors.Is(err, ErrNoMobileOTP) {
			t.Errorf("%T without a mobile OTP: %v", cmd, err)
		}
	}
}

func TestRevokeNamesTheGeneratorNumber(t *testing.T) {
	t.Parallel()
	c := Fold(NewCustomer(custNo), flat(domestic, mobileIssued(phoneA, validUntil)), time.Time{})
	_, err := c.Decide(RevokeMobile{Meta: online(events.ChannelMTS)}, now, &policy)
	var fe *events.FieldError
	if !asField(err, &fe) || fe.Field != "generator_number" {
		t.Fatalf("revocation without a generator number: %v", err)
	}
	_, err = c.Decide(RevokeMobile{Meta: online(events.ChannelMTS), GeneratorNo: "MOTP0001", Reason: events.RevokeReplacedByHardware}, now, &policy)
	if !asField(err, &fe) || fe.Field != "reason" {
		t.Fatalf("a revocation claiming the ledger's own reason: %v", err)
	}
}

// TestAsOf checks that folding to T gives what the ledger had recorded at T
// (recorded_at, in append order), whenever the events occurred: a late
// centre event that occurred before T but was recorded after it is not in
// the state as of T.
func TestAsOf(t *testing.T) {
	t.Parallel()
	at := func(e events.Event, occurred, recorded time.Duration) events.Event {
		e.OccurredAt, e.RecordedAt = now.Add(occurred), now.Add(recorded)
		return e
	}
	late := at(errs(2, 10)[1], 30*time.Minute, 4*time.Hour) // the centre's feed, four hours late
	evs := flat(at(reg(instKB), 0, 0), at(errs(1, 10)[0], time.Hour, time.Hour), at(lost(instKB), 2*time.Hour, 2*time.Hour),
		at(recovered(instKB, true), 3*time.Hour, 3*time.Hour), late)
	d0 := NewDevice("OTP", "000111222333")
	for _, tc := range []struct {
		asOf       time.Time
		version    uint64
		accident   bool
		errorCount int
	}{
		{now.Add(-time.Second), 0, false, 0},
		{now, 1, false, 0},
		{now.Add(90 * time.Minute), 2, false, 1},
		{now.Add(2 * time.Hour), 3, true, 1},
		{now.Add(3*time.Hour + time.Minute), 4, false, 1},
		{now.Add(4 * time.Hour), 5, false, 2},
		{time.Time{}, 5, false, 2},
	} {
		s := Fold(d0, evs, tc.asOf)
		if s.Version != tc.version || s.InAccident() != tc.accident || s.ErrorCount != tc.errorCount {
			t.Errorf("as of %v: version %d accident %v errors %d", tc.asOf, s.Version, s.InAccident(), s.ErrorCount)
		}
	}
}

// TestProfileRefusalsSay: R-ONE-PERSON names the customer number that holds
// the real-name number and nothing of the number itself; R-MOB-ELIGIBLE
// says 내국인 (nationality), no longer 국내 거주 (residence).
func TestProfileRefusalsSay(t *testing.T) {
	t.Parallel()
	_, err := Customer{Ref: custRef}.Decide(profile(core(), events.Individual, events.Korean, rnFP, claimedBy("C9999")), now, &policy)
	var re *RuleError
	if !errors.As(err, &re) || re.Rule != RuleOnePerson || !strings.Contains(re.Message, "C9999") || strings.Contains(err.Error(), rnFP) {
		t.Errorf("R-ONE-PERSON refusal %v", err)
	}
	_, err = Fold(NewCustomer(custNo), flat(profiled(events.Individual, events.NonKorean)), time.Time{}).Decide(issueMTS(phoneA, verified), now, &policy)
	if !errors.As(err, &re) || re.Rule != RuleMobEligible || !strings.Contains(RuleMobEligible.Text().Ko, "내국인") ||
		strings.Contains(RuleMobEligible.Text().Ko, "거주") || !strings.Contains(re.Message, "내국인") {
		t.Errorf("R-MOB-ELIGIBLE refusal %v, text %q", err, RuleMobEligible.Text().Ko)
	}
}

// TestClaimRealNameWithoutWork: a late claim of a customer without a
// profile, or of one that holds its claim, is refused with the sentinels
// the backfill counts, and appends nothing.
func TestClaimRealNameWithoutWork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		given []events.Event
		claim Person
		want  error
	}{
		{nil, unclaimed, ErrNoProfile},
		{flat(domestic), claimedBy(custNo), ErrClaimed},
		{flat(domestic), unclaimedAs(otherFP), ErrPersonState},
	} {
		evs, err := Fold(NewCustomer(custNo), tc.given, time.Time{}).Decide(ClaimRealName{Meta: core(), Person: &tc.claim}, now, &policy)
		if !errors.Is(err, tc.want) || len(evs) != 0 {
			t.Errorf("%v %+v: %v %v, want %v", types(tc.given), tc.claim, types(evs), err, tc.want)
		}
	}
}

// TestEveryRuleHasATable makes sure each rule id of domain.md §4 has an
// allowed and a refused row.
func TestEveryRuleHasATable(t *testing.T) {
	t.Parallel()
	if len(Rules) != 26 {
		t.Fatalf("domain.md §4 has 26 rules, Rules has %d", len(Rules))
	}
	// The row names are the specification of coverage; see TestDeviceRules
	// and TestCustomerRules. This test reads them through the source.
	names := ruleRowNames(t)
	for _, r := range Rules {
		if names[string(r)+" allowed"] == 0 || names[string(r)+" refused"] == 0 {
			t.Errorf("%s: %d allowed and %d refused rows", r, names[string(r)+" allowed"], names[string(r)+" refused"])
		}
	}
}
