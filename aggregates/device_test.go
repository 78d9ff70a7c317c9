package aggregates

import (
	"strings"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
)

type deviceCase = ruleCase[Device, DeviceCommand]

func custState(evs ...events.Event) *Customer {
	c := Fold(NewCustomer(custNo), evs, time.Time{})
	return &c
}

var (
	individual = custState(profiled(events.Individual, events.Korean))
	corp       = custState(profiled(events.Corporate, events.Korean))
	registered = []events.Type{events.TypeRegistered}
	homeReg    = []events.Type{events.TypeRegistered, events.TypeRegistered}
)

func registerHome(m Meta, c *Customer) Register {
	return Register{Meta: m, CustomerNo: custNo, Customer: c}
}

func TestDeviceRules(t *testing.T) {
	t.Parallel()
	holiday := DefaultPolicy(home)
	holiday.Holidays = []string{"2026-11-25"}
	if err := holiday.Validate(); err != nil {
		t.Fatal(err)
	}
	lockedAtHome := flat(reg(home), errs(10, 10))
	cases := []deviceCase{
		// R-HW-NO-ISSUE
		{name: "R-HW-NO-ISSUE allowed: first event of an unknown device is a registration", when: registerHome(branch(), individual), want: homeReg,
			check: func(t *testing.T, _ Device, evs []events.Event) {
				if len(only(devRef, evs)) != 1 || len(only(custRef, evs)) != 1 || evs[1].CausationID != evs[0].ID.String() {
					t.Fatalf("home registration must yield one device and one customer event, the second caused by the first: %+v", evs)
				}
			}},
		{name: "R-HW-NO-ISSUE allowed: centre registration of an unknown device", when: Register{Meta: center(instKB, "")}, want: registered},
		{name: "R-HW-NO-ISSUE refused: loss report of an unknown device", when: ReportLoss{Meta: online(events.ChannelPhone), Reason: events.LossLost}, rule: RuleHWNoIssue},
		{name: "R-HW-NO-ISSUE refused: error on an unknown device", when: IncrementError{Meta: auth()}, rule: RuleHWNoIssue},
		{name: "R-HW-NO-ISSUE refused: reset of an unknown device", when: ResetErrors{Meta: branch()}, rule: RuleHWNoIssue},

		// R-HW-ONE-PER-INSTITUTION
		{name: "R-HW-ONE-PER-INSTITUTION refused: register again where registered", given: flat(reg(instKB)), when: Register{Meta: center(instKB, "")}, rule: RuleHWOnePerInstitution},
		{name: "R-HW-ONE-PER-INSTITUTION refused: register at home again", given: flat(reg(home)), when: registerHome(branch(), individual), rule: RuleHWOnePerInstitution},
		{name: "R-HW-ONE-PER-INSTITUTION allowed: register at a second institution", given: flat(reg(instKB)), when: Register{Meta: center(instSH, "")}, want: registered},
		{name: "R-HW-ONE-PER-INSTITUTION refused: cancel where not registered", given: flat(reg(instKB)), when: Cancel{Meta: center(instSH, "")}, rule: RuleHWOnePerInstitution},
		{name: "R-HW-ONE-PER-INSTITUTION allowed: cancel where registered", given: flat(reg(instKB)), when: Cancel{Meta: center(instKB, "")}, want: []events.Type{events.TypeCancelled}},
		{name: "R-CHANNEL refused: the centre cancelling the home registration (no customer loaded for it)", given: flat(reg(home)), when: Cancel{Meta: center(home, "")}, rule: RuleChannel},
		{name: "R-HW-ONE-PER-INSTITUTION allowed: register again after cancelling", given: flat(reg(instKB), cancelled(instKB)), when: Register{Meta: center(instKB, "")}, want: registered},

		// R-HW-LOCK
		{name: "R-HW-LOCK allowed: the tenth error locks", given: flat(reg(instKB), errs(9, 10)), when: IncrementError{Meta: auth()}, want: []events.Type{events.TypeErrorIncremented},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if p := evs[0].Payload.(events.ErrorIncremented); p.CountAfter != 10 || !p.Locked || !d.Evolve(evs[0]).Locked {
					t.Fatalf("tenth error: %+v", p)
				}
			}},
		{name: "R-HW-LOCK allowed: the ninth error does not lock", given: flat(reg(instKB), errs(8, 10)), when: IncrementError{Meta: auth()}, want: []events.Type{events.TypeErrorIncremented},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if p := evs[0].Payload.(events.ErrorIncremented); p.CountAfter != 9 || p.Locked {
					t.Fatalf("ninth error: %+v", p)
				}
			}},
		{name: "R-HW-LOCK refused: an error while locked", given: flat(reg(instKB), errs(10, 10)), when: IncrementError{Meta: auth()}, rule: RuleHWLock},
		{name: "R-HW-LOCK refused: centre-fed error while locked", given: flat(reg(instKB), errs(10, 10)), when: IncrementError{Meta: center(instKB, "")}, rule: RuleHWLock},

		// R-HW-RESET-ALL
		{name: "R-HW-RESET-ALL allowed: a reset at another institution zeroes the one count", given: flat(reg(home), reg(instKB), errs(7, 10)),
			when: ResetErrors{Meta: center(instKB, events.OriginBranch)}, want: []events.Type{events.TypeErrorReset},
			check: func(t *testing.T, d Device, evs []events.Event) {
				after := d.Evolve(evs[0])
				if evs[0].Payload.(events.ErrorReset).CountBefore != 7 || after.ErrorCount != 0 || after.Locked {
					t.Fatalf("after reset: %+v", after)
				}
			}},
		{name: "R-HW-RESET-ALL allowed: a reset unlocks", given: lockedAtHome, when: ResetErrors{Meta: branch()}, want: []events.Type{events.TypeErrorReset}},
		{name: "R-HW-RESET-ALL refused: reset where the device is not registered", given: flat(reg(instKB), errs(3, 10)), when: ResetErrors{Meta: branch(), CustomerNo: custNo}, rule: RuleHWResetAll},

		// R-HW-RESET-CHANNEL
		{name: "R-HW-RESET-CHANNEL allowed: mobile web", given: lockedAtHome, when: ResetErrors{Meta: online(events.ChannelMobileWeb)}, want: []events.Type{events.TypeErrorReset}},
		{name: "R-HW-RESET-CHANNEL allowed: corporate agent in branch", given: lockedAtHome,
			when: ResetErrors{Meta: corporate(agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney, events.DocCorporateSealCertificate))},
			want: []events.Type{events.TypeErrorReset}},
		{name: "R-HW-RESET-CHANNEL refused: HTS", given: lockedAtHome, when: ResetErrors{Meta: online(events.ChannelHTS)}, rule: RuleHWResetChannel},
		{name: "R-HW-RESET-CHANNEL refused: phone", given: lockedAtHome, when: ResetErrors{Meta: online(events.ChannelPhone)}, rule: RuleHWResetChannel},
		{name: "R-HW-RESET-CHANNEL refused: ODS", given: lockedAtHome, when: ResetErrors{Meta: online(events.ChannelODS)}, rule: RuleHWResetChannel},

		// R-HW-LOCKED-ONLINE
		{name: "R-HW-LOCKED-ONLINE refused: online registration while locked", given: flat(reg(instKB), errs(10, 10)),
			when: registerHome(online(events.ChannelHTS), individual), rule: RuleHWLockedOnline},
		{name: "R-HW-LOCKED-ONLINE refused: online cancellation while locked", given: lockedAtHome,
			when: Cancel{Meta: online(events.ChannelMTS), Customer: custState(hwMirror("000111222333"))}, rule: RuleHWLockedOnline},
		{name: "R-HW-LOCKED-ONLINE refused: centre registration made online while locked", given: flat(reg(instKB), errs(10, 10)),
			when: Register{Meta: center(instSH, events.OriginOnline)}, rule: RuleHWLockedOnline},
		{name: "R-HW-LOCKED-ONLINE allowed: branch cancellation while locked", given: lockedAtHome,
			when: Cancel{Meta: branch(), Customer: custState(hwMirror("000111222333"))}, want: []events.Type{events.TypeCancelled, events.TypeCancelled}},
		{name: "R-HW-LOCKED-ONLINE allowed: branch registration while locked", given: flat(reg(instKB), errs(10, 10)),
			when: registerHome(branch(), individual), want: homeReg},
		{name: "R-HW-LOCKED-ONLINE allowed: online registration when not locked", given: flat(reg(instKB), errs(9, 10)),
			when: registerHome(online(events.ChannelWTS), individual), want: homeReg},

		// R-HW-DISCARDED
		{name: "R-HW-DISCARDED allowed: a discarded but registered device keeps counting", given: flat(reg(instKB), errs(4, 10)), when: IncrementError{Meta: auth()}, want: []events.Type{events.TypeErrorIncremented}},
		{name: "R-HW-DISCARDED refused: error for a device registered nowhere", given: flat(reg(instKB), cancelled(instKB)), when: IncrementError{Meta: auth()}, rule: RuleHWDiscarded},

		// R-HW-LOST-ALL
		{name: "R-HW-LOST-ALL allowed: a phone report puts every registration in accident", given: flat(reg(home), reg(instKB), reg(instSH)),
			when: ReportLoss{Meta: online(events.ChannelPhone), Reason: events.LossStolen}, want: []events.Type{events.TypeReportedLost},
			check: func(t *testing.T, d Device, evs []events.Event) {
				after := d.Evolve(evs[0])
				if strings.Join(evs[0].Payload.(events.ReportedLost).Institutions, ",") != "IBKS,KB001,SH002" || len(after.Accident) != 3 {
					t.Fatalf("accident: %+v", after.Accident)
				}
			}},
		{name: "R-HW-LOST-ALL allowed: a report without a reason (screen 2374 collects none)", given: flat(reg(home), reg(instKB)),
			when: ReportLoss{Meta: branch()}, want: []events.Type{events.TypeReportedLost},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if p := evs[0].Payload.(events.ReportedLost); p.Reason != "" || len(d.Evolve(evs[0]).Accident) != 2 {
					t.Fatalf("a report without a reason: %+v", p)
				}
			}},
		{name: "R-HW-LOST-ALL allowed: a report at another institution covers home too", given: flat(reg(home), reg(instKB)),
			when: ReportLoss{Meta: center(instSH, events.OriginOnline), Reason: events.LossLost}, want: []events.Type{events.TypeReportedLost}},
		{name: "R-HW-LOST-ALL refused: a device registered nowhere", given: flat(reg(instKB), cancelled(instKB)),
			when: ReportLoss{Meta: online(events.ChannelPhone), Reason: events.LossLost, CustomerNo: custNo}, rule: RuleHWLostAll},
		{name: "R-HW-LOST-ALL allowed: a second report keeps the institutions already in accident, cancelled ones too", given: flat(reg(instKB), reg(instSH), lost(instKB, instSH), cancelled(instKB)),
			when: ReportLoss{Meta: center(instSH, events.OriginOnline), Reason: events.LossStolen}, want: []events.Type{events.TypeReportedLost},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if after := d.Evolve(evs[0]); !after.Accident[instKB] || !after.Accident[instSH] || !after.AccidentSince.Equal(d.AccidentSince) {
					t.Fatalf("after a second report: %+v since %v", after.Accident, after.AccidentSince)
				}
			}},

		// R-HW-RECOVER-EACH
		{name: "R-HW-RECOVER-EACH allowed: one institution recovers, the other stays in accident", given: flat(reg(instKB), reg(instSH), lost(instKB, instSH)),
			when: Recover{Meta: center(instKB, events.OriginBranch)}, want: []events.Type{events.TypeRecovered},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if after := d.Evolve(evs[0]); !after.InAccident() || !after.Accident[instSH] || after.Accident[instKB] {
					t.Fatalf("after one recovery: %+v", after.Accident)
				}
			}},
		{name: "R-HW-RECOVER-EACH allowed: the last recovery makes it usable", given: flat(reg(instKB), reg(instSH), lost(instKB, instSH), recovered(instKB, true)),
			when: Recover{Meta: center(instSH, events.OriginOnline)}, want: []events.Type{events.TypeRecovered},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if after := d.Evolve(evs[0]); after.InAccident() {
					t.Fatalf("still in accident: %+v", after.Accident)
				}
			}},
		{name: "R-HW-RECOVER-EACH refused: recovery where not in accident", given: flat(reg(instKB), reg(instSH), lost(instKB, instSH), recovered(instKB, true)),
			when: Recover{Meta: center(instKB, events.OriginBranch)}, rule: RuleHWRecoverEach},
		{name: "R-HW-RECOVER-EACH refused: recovery without an accident", given: flat(reg(instKB)),
			when: Recover{Meta: center(instKB, events.OriginBranch)}, rule: RuleHWRecoverEach},

		// R-HW-RECOVER-ONLINE
		{name: "R-HW-RECOVER-ONLINE refused: online at home with no branch recovery", given: flat(reg(home), reg(instKB), lost(home, instKB)),
			when: Recover{Meta: online(events.ChannelMobileWeb)}, rule: RuleHWRecoverOnline},
		{name: "R-HW-RECOVER-ONLINE refused: another institution's online recovery does not count", given: flat(reg(home), reg(instKB), lost(home, instKB), recovered(instKB, false)),
			when: Recover{Meta: online(events.ChannelMobileWeb)}, rule: RuleHWRecoverOnline},
		{name: "R-HW-RECOVER-ONLINE allowed: online at home after a branch recovery elsewhere", given: flat(reg(home), reg(instKB), lost(home, instKB), recovered(instKB, true)),
			when: Recover{Meta: online(events.ChannelMobileWeb)}, want: []events.Type{events.TypeRecovered}},
		{name: "R-HW-RECOVER-ONLINE allowed: an online recovery elsewhere after the branch one keeps it open", given: flat(reg(home), reg(instKB), reg(instSH), lost(home, instKB, instSH), recovered(instKB, true), recovered(instSH, false)),
			when: Recover{Meta: online(events.ChannelMobileWeb)}, want: []events.Type{events.TypeRecovered}},
		{name: "R-HW-RECOVER-ONLINE allowed: the centre's in-branch recovery counts as one", given: flat(reg(home), reg(instKB), lost(home, instKB)),
			when: Recover{Meta: center(instKB, events.OriginBranch)}, want: []events.Type{events.TypeRecovered},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if !evs[0].Payload.(events.Recovered).InBranch || !d.Evolve(evs[0]).BranchRecovered {
					t.Fatal("a recovery made at another institution's branch is not recorded as in branch")
				}
			}},
		{name: "R-HW-RECOVER-ONLINE allowed: the centre's online recovery, which opens nothing at home", given: flat(reg(home), reg(instKB), reg(instSH), lost(home, instKB, instSH)),
			when: Recover{Meta: center(instKB, events.OriginOnline)}, want: []events.Type{events.TypeRecovered},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if evs[0].Payload.(events.Recovered).InBranch || d.Evolve(evs[0]).BranchRecovered {
					t.Fatal("an online recovery at another institution is recorded as in branch")
				}
			}},
		{name: "R-HW-RECOVER-ONLINE refused: a new loss report needs a new branch recovery", given: flat(reg(home), reg(instKB), lost(home, instKB), recovered(instKB, true), lost(home)),
			when: Recover{Meta: online(events.ChannelMobileWeb)}, rule: RuleHWRecoverOnline},
		{name: "R-HW-RECOVER-ONLINE allowed: in branch at home", given: flat(reg(home), reg(instKB), lost(home, instKB)),
			when: Recover{Meta: branch()}, want: []events.Type{events.TypeRecovered},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if !evs[0].Payload.(events.Recovered).InBranch || !d.Evolve(evs[0]).BranchRecovered {
					t.Fatal("branch recovery not recorded as in branch")
				}
			}},

		// R-HW-LOST-BLOCKS
		{name: "R-HW-LOST-BLOCKS refused: registration while in accident", given: flat(reg(instKB), lost(instKB)), when: Register{Meta: center(instSH, "")}, rule: RuleHWLostBlocks},
		{name: "R-HW-LOST-BLOCKS refused: a device in accident does not replace a mobile OTP", given: flat(reg(instKB), lost(instKB), cancelled(instKB)),
			when: registerHome(branch(), custState(mobileIssued(phoneA, now.AddDate(3, 0, 0)))), rule: RuleHWLostBlocks},
		{name: "R-HW-LOST-BLOCKS refused: error while in accident", given: flat(reg(instKB), lost(instKB)), when: IncrementError{Meta: auth()}, rule: RuleHWLostBlocks},
		{name: "R-HW-LOST-BLOCKS allowed: cancellation while in accident, which does not end it", given: flat(reg(instKB), lost(instKB)), when: Cancel{Meta: center(instKB, "")},
			want: []events.Type{events.TypeCancelled},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if after := d.Evolve(evs[0]); !after.Accident[instKB] || len(after.Registrations) != 0 {
					t.Fatalf("a cancellation ended the accident: %+v", after.Accident)
				}
			}},
		{name: "R-HW-LOST-BLOCKS refused: re-registration at the centre after cancelling everywhere during the accident", given: flat(reg(home), reg(instKB), lost(home, instKB), cancelled(instKB), cancelled(home)),
			when: Register{Meta: center(instKB, events.OriginOnline)}, rule: RuleHWLostBlocks},
		{name: "R-HW-LOST-BLOCKS refused: online re-registration at home after cancelling everywhere during the accident", given: flat(reg(home), reg(instKB), lost(home, instKB), cancelled(instKB), cancelled(home)),
			when: registerHome(online(events.ChannelHTS), individual), rule: RuleHWLostBlocks},
		{name: "R-HW-LOST-BLOCKS allowed: recovery where the registration was cancelled", given: flat(reg(instKB), lost(instKB), cancelled(instKB)),
			when: Recover{Meta: center(instKB, events.OriginBranch)}, want: []events.Type{events.TypeRecovered},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if d.Evolve(evs[0]).InAccident() {
					t.Fatal("still in accident after the only institution recovered")
				}
			}},
		{name: "R-HW-LOST-BLOCKS allowed: registration once every institution recovered, cancelled ones included", given: flat(reg(instKB), lost(instKB), cancelled(instKB), recovered(instKB, true)),
			when: Register{Meta: center(instKB, "")}, want: registered},
		{name: "R-HW-LOST-BLOCKS allowed: registration after recovery", given: flat(reg(instKB), lost(instKB), recovered(instKB, true)), when: Register{Meta: center(instSH, "")}, want: registered},

		// R-HW-VALIDITY
		{name: "R-HW-VALIDITY allowed: an expired warranty is shown, not enforced", when: Register{Meta: center(instKB, ""), WarrantyFrom: "2017-01-01", WarrantyTo: "2020-01-01"}, want: registered,
			check: func(t *testing.T, d Device, evs []events.Event) {
				if r := d.Evolve(evs[0]).Registrations[instKB]; r.WarrantyTo != "2020-01-01" {
					t.Fatalf("warranty not kept: %+v", r)
				}
			}},
		{name: "R-HW-VALIDITY allowed: errors count after the warranty ended", given: flat(fact(devRef, instKB, events.ChannelCenter, events.Registered{Vendor: "OTP", Serial: "000111222333", WarrantyFrom: "2017-01-01", WarrantyTo: "2020-01-01"})),
			when: IncrementError{Meta: auth()}, want: []events.Type{events.TypeErrorIncremented}},
		{name: "R-HW-VALIDITY allowed: a warranty of one day", when: Register{Meta: center(instKB, ""), WarrantyFrom: "2026-01-01", WarrantyTo: "2026-01-01"}, want: registered},
		{name: "R-HW-VALIDITY refused: a warranty that ends before it starts", when: Register{Meta: center(instKB, ""), WarrantyFrom: "2027-01-01", WarrantyTo: "2026-01-01"}, rule: RuleHWValidity},

		// R-ONE-OTP (the device side of a home registration)
		{name: "R-ONE-OTP refused: a second hardware OTP at home", when: registerHome(branch(), custState(profiled(events.Individual, events.Korean), hwMirror("999888777666"))), rule: RuleOneOTP},
		{name: "R-ONE-OTP allowed: hardware at home replaces the active mobile OTP in the same append", when: registerHome(branch(), custState(mobileIssued(phoneA, now.AddDate(3, 0, 0)))),
			want: []events.Type{events.TypeRegistered, events.TypeMobileRevoked, events.TypeRegistered}, check: replacedMobile},
		{name: "R-ONE-OTP allowed: hardware replaces a PIN-locked mobile OTP too", when: registerHome(branch(), custState(flat(mobileIssued(phoneA, now.AddDate(3, 0, 0)), pinErrs(5))...)),
			want: []events.Type{events.TypeRegistered, events.TypeMobileRevoked, events.TypeRegistered}, check: replacedMobile},
		{name: "R-ONE-OTP refused: hardware to replace a mobile OTP while a second hardware OTP is at home", when: registerHome(branch(), custState(hwMirror("999888777666"), mobileIssued(phoneA, now.AddDate(3, 0, 0)))), rule: RuleOneOTP},
		{name: "R-ONE-OTP allowed: hardware after the first was cancelled", when: registerHome(branch(), custState(hwMirror("999888777666"), hwMirrorCancelled("999888777666"))), want: homeReg},
		{name: "R-ONE-OTP allowed: registrations elsewhere do not count", given: flat(reg(home)), when: Register{Meta: center(instKB, "")}, want: registered},

		// R-CHANNEL
		{name: "R-CHANNEL refused: ODS registration", when: registerHome(online(events.ChannelODS), individual), rule: RuleChannel},
		{name: "R-CHANNEL refused: phone registration", when: registerHome(online(events.ChannelPhone), individual), rule: RuleChannel},
		{name: "R-CHANNEL refused: homepage recovery", given: flat(reg(home), lost(home), recovered(home, true)), when: Recover{Meta: online(events.ChannelHomepage)}, rule: RuleChannel},
		{name: "R-CHANNEL refused: branch-reported error", given: flat(reg(home)), when: IncrementError{Meta: branch()}, rule: RuleChannel},
		{name: "R-CHANNEL refused: CENTER for the home institution", when: Register{Meta: center(home, "")}, rule: RuleChannel},
		{name: "R-CHANNEL refused: a home channel acting for another institution", given: flat(reg(instKB)), when: Cancel{Meta: func() Meta { m := online(events.ChannelHTS); m.Institution = instKB; return m }()}, rule: RuleChannel},
		{name: "R-CHANNEL refused: staff role on an online channel", given: flat(reg(home)), when: ReportLoss{Meta: func() Meta { m := online(events.ChannelMTS); m.Actor.Role = events.RoleStaff; return m }(), Reason: events.LossLost}, rule: RuleChannel},
		{name: "R-CHANNEL allowed: phone loss report, attributed to the device's customer at home", given: flat(reg(home)), when: ReportLoss{Meta: online(events.ChannelPhone), Reason: events.LossLost}, want: []events.Type{events.TypeReportedLost},
			check: func(t *testing.T, _ Device, evs []events.Event) {
				if got := evs[0].Payload.(events.ReportedLost).CustomerNo; got != custNo {
					t.Fatalf("loss report attributed to %q", got)
				}
			}},
		{name: "R-CHANNEL allowed: HTS registration", when: registerHome(online(events.ChannelHTS), individual), want: homeReg},
		{name: "R-CHANNEL allowed: CENTER bypasses the matrix", given: flat(reg(instKB), lost(instKB)), when: Recover{Meta: center(instKB, events.OriginOnline)}, want: []events.Type{events.TypeRecovered}},

		// R-AGENT
		{name: "R-AGENT refused: an individual's agent", given: flat(reg(home)), when: ReportLoss{Meta: agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney), Reason: events.LossLost}, rule: RuleAgent},
		{name: "R-AGENT refused: an individual's agent registering", when: registerHome(agent(events.DocRealNameID), individual), rule: RuleAgent},
		{name: "R-AGENT refused: an individual has no representative", given: flat(reg(home)), when: ReportLoss{Meta: representative(events.DocBusinessRegistration), Reason: events.LossLost}, rule: RuleAgent},
		{name: "R-AGENT refused: a corporate agent on the phone", given: flat(reg(home)), when: ReportLoss{Meta: corporate(func() Meta { m := online(events.ChannelPhone); m.Actor.Role = events.RoleAgent; return m }()), Reason: events.LossLost}, rule: RuleAgent},
		{name: "R-AGENT allowed: a corporation's agent registering", when: registerHome(agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney, events.DocCorporateSealCertificate), corp), want: homeReg},
		{name: "R-AGENT refused: the profile on record decides over the command's customer type", given: flat(reg(home)),
			when: ReportLoss{Meta: corporate(representative(events.DocRealNameID, events.DocBusinessRegistration)), Reason: events.LossLost, Customer: individual}, rule: RuleAgent},
		{name: "R-AGENT allowed: a corporate representative at home for a device registered elsewhere, named by customer_no", given: flat(reg(instKB)),
			when: ReportLoss{Meta: representative(events.DocRealNameID, events.DocBusinessRegistration), Reason: events.LossLost, CustomerNo: custNo, Customer: corp},
			want: []events.Type{events.TypeReportedLost},
			check: func(t *testing.T, _ Device, evs []events.Event) {
				if got := evs[0].Payload.(events.ReportedLost).CustomerNo; got != custNo {
					t.Fatalf("loss report attributed to %q", got)
				}
			}},
		{name: "R-AGENT allowed: a corporation's agent reporting a loss", given: flat(reg(home)), when: ReportLoss{Meta: corporate(agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney)), Reason: events.LossLost}, want: []events.Type{events.TypeReportedLost}},

		// R-DOCS
		{name: "R-DOCS refused: branch registration without the real-name ID", when: registerHome(withDocs(branch(), events.DocProcessingForm, events.DocSealOrSignature), individual), rule: RuleDocs},
		{name: "R-DOCS refused: branch action without the processing form", given: flat(reg(home)), when: ReportLoss{Meta: withDocs(branch(), events.DocRealNameID, events.DocSealOrSignature), Reason: events.LossLost}, rule: RuleDocs},
		{name: "R-DOCS refused: corporate agent recovery without the seal certificate", given: flat(reg(home), lost(home)),
			when: Recover{Meta: agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney), Customer: corp}, rule: RuleDocs},
		{name: "R-DOCS refused: corporate agent error reset without the seal certificate", given: flat(reg(home), errs(3, 10)),
			when: ResetErrors{Meta: agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney), Customer: corp}, rule: RuleDocs},
		{name: "R-DOCS allowed: corporate agent registration needs no seal certificate", when: registerHome(agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney), corp), want: homeReg},
		{name: "R-DOCS allowed: corporate agent recovery with the seal certificate", given: flat(reg(home), lost(home)),
			when: Recover{Meta: agent(events.DocRealNameID, events.DocBusinessRegistration, events.DocPowerOfAttorney, events.DocCorporateSealCertificate), Customer: corp},
			want: []events.Type{events.TypeRecovered}},
		{name: "R-DOCS refused: corporate representative recovery without the representative's ID", given: flat(reg(home), lost(home)), when: Recover{Meta: corporate(representative(events.DocBusinessRegistration))}, rule: RuleDocs},
		{name: "R-DOCS refused: corporate representative loss report without the representative's ID", given: flat(reg(home)), when: ReportLoss{Meta: representative(events.DocBusinessRegistration), Reason: events.LossLost, Customer: corp}, rule: RuleDocs},
		{name: "R-DOCS allowed: corporate representative loss report with ID and business registration", given: flat(reg(home)), when: ReportLoss{Meta: representative(events.DocRealNameID, events.DocBusinessRegistration), Reason: events.LossLost, Customer: corp}, want: []events.Type{events.TypeReportedLost}},
		{name: "R-DOCS allowed: a phone loss report needs no documents", given: flat(reg(home)), when: ReportLoss{Meta: online(events.ChannelPhone), Reason: events.LossOther}, want: []events.Type{events.TypeReportedLost}},

		// R-HOURS
		{name: "R-HOURS refused: branch after closing", given: flat(reg(home)), when: ReportLoss{Meta: branch(), Reason: events.LossLost}, at: evening, rule: RuleHours},
		{name: "R-HOURS refused: branch at 16:00", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: closing, rule: RuleHours},
		{name: "R-HOURS refused: branch on Saturday", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: saturday, rule: RuleHours},
		{name: "R-HOURS refused: branch on a configured holiday", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, policy: &holiday, rule: RuleHours},
		{name: "R-HOURS refused: branch on the market's year-end closing day", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: yearEnd, rule: RuleHours},
		{name: "R-HOURS refused: branch on a substitute holiday of 2027", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: substitute2027, rule: RuleHours},
		{name: "R-HOURS allowed: branch on the last trading day of 2026", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: yearEnd.AddDate(0, 0, -1), want: []events.Type{events.TypeErrorReset}},
		{name: "R-HOURS refused: branch at 16:30", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: closing.Add(30 * time.Minute), rule: RuleHours},
		{name: "R-HOURS allowed: branch at 09:30", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: opening.Add(30 * time.Minute), want: []events.Type{events.TypeErrorReset}},
		{name: "R-HOURS allowed: branch at 15:59", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: closing.Add(-time.Minute), want: []events.Type{events.TypeErrorReset}},
		{name: "R-HOURS allowed: branch at 09:00", given: flat(reg(home)), when: ResetErrors{Meta: branch()}, at: opening, want: []events.Type{events.TypeErrorReset}},
		{name: "R-HOURS allowed: online on Sunday night", given: flat(reg(home)), when: ReportLoss{Meta: online(events.ChannelHomepage), Reason: events.LossLost}, at: sundayLate, want: []events.Type{events.TypeReportedLost}},
		{name: "R-HOURS allowed: centre feed on Saturday", given: flat(reg(instKB)), when: Cancel{Meta: center(instKB, events.OriginBranch)}, at: saturday, want: []events.Type{events.TypeCancelled}},

		// R-APPROVAL
		{name: "R-APPROVAL allowed: a manager approves a branch event", given: flat(reg(home)), when: Approve{Meta: branch(), Target: reg(home).ID, Approver: "M200"}, want: []events.Type{events.TypeApproved},
			check: func(t *testing.T, d Device, evs []events.Event) {
				if len(d.Pending) != 1 || len(d.Evolve(evs[0]).Pending) != 0 {
					t.Fatalf("pending before %d after %d", len(d.Pending), len(d.Evolve(evs[0]).Pending))
				}
			}},
		{name: "R-APPROVAL refused: approval by the staff member who processed it", given: flat(reg(home)), when: Approve{Meta: branch(), Target: reg(home).ID, Approver: "S100"}, rule: RuleApproval},
		{name: "R-APPROVAL refused: approved twice", given: flat(reg(home), fact(devRef, home, events.ChannelBranch, events.Approved{EventID: reg(home).ID, Approver: "M200"})),
			when: Approve{Meta: branch(), Target: reg(home).ID, Approver: "M300"}, rule: RuleApproval},
		{name: "R-APPROVAL refused: a non-branch event", given: flat(reg(instKB)), when: Approve{Meta: branch(), Target: reg(instKB).ID, Approver: "M200"}, rule: RuleApproval},
	}
	runRules(t, NewDevice("OTP", "000111222333"), Device.Decide, cases)
}

// replacedMobile checks a home registration that replaced the customer's
// mobile OTP (R-ONE-OTP): the revocation is the customer's, caused by the
// device's registration, and the customer ends with the hardware only.
func replacedMobile(t *testing.T, _ Device, evs []events.Event) {
	t.Helper()
	rev, ok := evs[1].Payload.(events.MobileRevoked)
	if !ok || rev.Reason != events.RevokeReplacedByHardware || rev.GeneratorNo != "MOTP0001" || evs[1].Aggregate != custRef ||
		evs[1].CausationID != evs[0].ID.String() || evs[1].Approvable() {
		t.Fatalf("the mobile OTP's end: %+v", evs[1])
	}
	c := Fold(*custState(mobileIssued(phoneA, now.AddDate(3, 0, 0))), only(custRef, evs), time.Time{})
	if c.Mobile.Active || !c.Hardware.Active || c.Hardware.Serial != "000111222333" {
		t.Fatalf("customer after the replacement: %+v", c)
	}
}

func TestDeviceDecideInput(t *testing.T) {
	t.Parallel()
	d := Fold(NewDevice("OTP", "000111222333"), flat(reg(home)), time.Time{})
	elsewhere := Fold(NewDevice("OTP", "000111222333"), flat(reg(instKB)), time.Time{})
	noStaff := branch()
	noStaff.Staff = ""
	centerTime := online(events.ChannelMTS)
	centerTime.OccurredAt = now.Add(-time.Minute)
	for name, tc := range map[string]struct {
		cmd   DeviceCommand
		field string
	}{
		"branch without staff":            {ReportLoss{Meta: noStaff, Reason: events.LossLost}, "staff"},
		"client-sent time off the centre": {ReportLoss{Meta: centerTime, Reason: events.LossLost}, "occurred_at"},
		"loss with an unknown reason":     {ReportLoss{Meta: online(events.ChannelPhone), Reason: "MISPLACED"}, "payload.reason"},
		"cancel claiming a mobile OTP":    {Cancel{Meta: branch(), Reason: events.CancelReplacedByMobile, Customer: custState(hwMirror("000111222333"))}, "reason"},
		"bad approver":                    {Approve{Meta: branch(), Target: reg(home).ID, Approver: "홍길동"}, "approver"},
		"home registration, no customer":  {Register{Meta: branch()}, "customer_no"},
		"another customer's device":       {ReportLoss{Meta: online(events.ChannelPhone), Reason: events.LossLost, CustomerNo: "C0002"}, "customer_no"},
		"malformed customer number":       {ResetErrors{Meta: online(events.ChannelMobileWeb), CustomerNo: "c-1"}, "customer_no"},
	} {
		_, err := d.Decide(tc.cmd, now, &policy)
		var fe *events.FieldError
		if !asField(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: want field %s, got %v", name, tc.field, err)
		}
	}
	// A customer-made action on a device with no registration at home must
	// name its customer, so that every 2374/2375 action is attributable.
	for name, tc := range map[string]struct {
		cmd   DeviceCommand
		field string
	}{
		"unattributed loss report": {ReportLoss{Meta: online(events.ChannelPhone), Reason: events.LossLost}, "customer_no"},
		"unattributed reset":       {ResetErrors{Meta: branch()}, "customer_no"},
	} {
		_, err := elsewhere.Decide(tc.cmd, now, &policy)
		var fe *events.FieldError
		if !asField(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: want field %s, got %v", name, tc.field, err)
		}
	}
	if _, err := NewDevice("OTP", "000111222333").Decide(Register{Meta: branch(), CustomerNo: custNo}, now, &policy); err != ErrCustomerState {
		t.Errorf("home registration without the customer's state: %v", err)
	}
}

// TestActingCustomer: whose state the ledger loads for a device command.
func TestActingCustomer(t *testing.T) {
	t.Parallel()
	atHome, elsewhere := deviceAt(reg(home)), deviceAt(reg(instKB))
	kb := online(events.ChannelHTS)
	kb.Institution = instKB
	for name, tc := range map[string]struct {
		d    Device
		cmd  DeviceCommand
		want string
	}{
		"home registration":                      {NewDevice("OTP", "000111222333"), Register{Meta: branch(), CustomerNo: "C0009"}, "C0009"},
		"home registration, malformed customer":  {NewDevice("OTP", "000111222333"), Register{Meta: branch(), CustomerNo: "c9"}, ""},
		"registration elsewhere":                 {NewDevice("OTP", "000111222333"), Register{Meta: center(instKB, ""), CustomerNo: "C0009"}, ""},
		"loss report: the home registration's":   {atHome, ReportLoss{Meta: online(events.ChannelPhone), CustomerNo: "C0009"}, custNo},
		"loss report: the command's":             {elsewhere, ReportLoss{Meta: online(events.ChannelPhone), CustomerNo: "C0009"}, "C0009"},
		"loss report: none named":                {elsewhere, ReportLoss{Meta: online(events.ChannelPhone)}, ""},
		"the centre's recovery":                  {atHome, Recover{Meta: center(instKB, events.OriginBranch), CustomerNo: "C0009"}, ""},
		"the authentication service's error":     {atHome, IncrementError{Meta: auth()}, ""},
		"a home channel for another institution": {atHome, Cancel{Meta: kb, CustomerNo: "C0009"}, ""},
		"reset in branch":                        {atHome, ResetErrors{Meta: branch()}, custNo},
	} {
		if got := ActingCustomer(tc.d, tc.cmd, &policy); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

// TestWithMeta: the ledger's command rewrite sets the meta and, where the
// command carries one, the customer's state; nil keeps what was there.
func TestWithMeta(t *testing.T) {
	t.Parallel()
	c := custState(domestic)
	m := branch()
	m.IdempotencyKey = "k"
	for _, cmd := range []DeviceCommand{Register{}, Cancel{}, ReportLoss{}, Recover{}, ResetErrors{}, IncrementError{}, Approve{}} {
		got := WithMeta(cmd, m, c)
		if got.Metadata().IdempotencyKey != "k" {
			t.Errorf("%T: meta not set", cmd)
		}
		if _, carried := customerOf(got); carried != c && customerOfType(cmd) {
			t.Errorf("%T: customer state not set", cmd)
		}
		if _, kept := customerOf(WithMeta(got, m, nil)); kept != c && customerOfType(cmd) {
			t.Errorf("%T: nil replaced the customer state", cmd)
		}
	}
	for _, cmd := range []CustomerCommand{SetProfile{}, IssueMobile{}, RevokeMobile{}, IncrementMobileError{}, ResetMobileErrors{}, Approve{}} {
		if WithCustomerMeta(cmd, m).Metadata().IdempotencyKey != "k" {
			t.Errorf("%T: meta not set", cmd)
		}
	}
}

// customerOfType reports whether cmd's type carries a customer's state.
func customerOfType(cmd DeviceCommand) bool {
	switch cmd.(type) {
	case Register, Cancel, ReportLoss, Recover, ResetErrors:
		return true
	}
	return false
}
