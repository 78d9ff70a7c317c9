package aggregates

// RuleText is what a refusal by a rule tells a teller: the rule's meaning in
// Korean (the branch screens' language, the manual's words where it has
// them) and in English. The console shows it beside the rule id; the API
// gives the Korean one as error.message_ko.
type RuleText struct {
	Ko, En string
}

// Text returns r's catalogue entry (the zero RuleText for an unknown id).
func (r RuleID) Text() RuleText { return ruleTexts[r] }

// ruleTexts is the one catalogue of the rules of domain.md §4.
var ruleTexts = map[RuleID]RuleText{
	RuleHWNoIssue: {"당사는 하드웨어 OTP를 발급하지 않습니다. 타기관 발급 OTP는 등록으로만 처리합니다.",
		"The home institution never issues hardware OTP: a device enters only by registration."},
	RuleHWOnePerInstitution: {"한 기관에는 한 번만 등록할 수 있습니다(이미 등록됨, 또는 등록되지 않은 기관의 해지).",
		"A device is registered once per institution: already registered there, or not registered there to cancel."},
	RuleHWLock: {"오류 10회 누적으로 OTP가 잠겼습니다. 오류횟수를 초기화해야 사용할 수 있습니다.",
		"The device is locked at 10 errors; reset its error count first."},
	RuleHWResetAll: {"오류횟수 초기화는 모든 기관의 오류횟수를 0으로 만듭니다.",
		"A reset sets the device's error count to 0 at every institution."},
	RuleHWResetChannel: {"오류횟수 초기화는 영업점, 모바일웹, 법인 대리인, 센터를 통해서만 가능합니다.",
		"Resets are taken only in branch, mobile web, by a corporate agent or from the centre."},
	RuleHWLockedOnline: {"잠긴 OTP는 온라인으로 등록·해지할 수 없습니다. 영업점에서 처리하십시오.",
		"A locked device cannot be registered or cancelled online; only in branch."},
	RuleHWDiscarded: {"어느 기관에도 등록되지 않은 OTP의 오류는 기록할 수 없습니다.",
		"Errors are recorded only for a device registered somewhere."},
	RuleHWLostAll: {"사고신고는 등록된 모든 기관에 사고로 등록됩니다.",
		"A loss report puts the device in accident at every institution where it is registered."},
	RuleHWRecoverEach: {"사고해지는 기관별로 합니다. 모든 기관에서 사고해지해야 사용할 수 있습니다.",
		"Recovery is per institution; the device works again once every institution has recovered."},
	RuleHWRecoverOnline: {"당사 온라인 사고해지는 한 기관 이상에서 영업점 사고해지가 있어야 가능합니다.",
		"An online recovery at home needs an in-branch recovery somewhere since the loss report."},
	RuleHWLostBlocks: {"사고 중인 OTP는 등록하거나 오류를 기록할 수 없습니다. 등록된 모든 금융기관에서 사고해지를 해야 사용가능합니다.",
		"While in accident a device cannot be registered or record errors; only a recovery ends the accident."},
	RuleHWValidity: {"유효기간은 보증기간이며, 만료 후에도 작동하는 동안은 사용할 수 있습니다(표시만 함).",
		"Validity is the warranty period: shown, never enforced."},
	RuleOneOTP: {"1인 1개의 OTP만 사용할 수 있습니다. 새 매체는 기존 매체를 대체하며, 두 번째 실물 OTP는 기존 OTP를 해지(2372)한 후 등록하십시오.",
		"One OTP per person at the home institution: a new medium replaces the old; a second hardware OTP needs the first cancelled (2372)."},
	RuleOnePerson: {"1인 1개의 OTP: 이 실명번호는 이미 다른 고객번호로 등록되어 있습니다.",
		"One OTP per person: this real-name number is already another customer number's."},
	RuleProfile: {"고객 정보는 고객원장(CORE) 또는 영업점에서만 등록하며, 고객 구분(개인/법인)과 실명번호는 변경할 수 없습니다.",
		"Profiles come only from the customer master (CORE) or a branch; type and real-name number never change."},
	RuleMobEligible: {"모바일 OTP는 내국인 개인고객만 발급받을 수 있습니다(법인, 외국인 불가).",
		"Mobile OTP is for individual customers who are Korean nationals only."},
	RuleMobOnePhone: {"모바일 OTP는 스마트폰 1대에만 발급됩니다. 다른 기기 발급 시 기존 OTP는 폐기됩니다.",
		"One smartphone per customer: issuing on another phone revokes the old mobile OTP."},
	RuleMobValidity: {"모바일 OTP의 유효기간은 발급일로부터 3년입니다.",
		"A mobile OTP is valid three years from issuance."},
	RuleMobPINLock: {"PIN 오류 5회로 모바일 OTP가 잠겼습니다. 재발급만 가능합니다.",
		"The mobile OTP is locked at 5 PIN errors; it can only be reissued."},
	RuleMobVerify: {"모바일 OTP는 비대면(MTS)으로만 발급하며, 당사 계좌·휴대폰 본인·추가 인증이 모두 필요합니다.",
		"Mobile OTP is issued only non-face-to-face (MTS), with all three verifications."},
	RuleMobRevokeChannel: {"모바일 OTP 폐기는 영업점 또는 MTS에서, 현재 교부 중인 생성기 번호로만 가능합니다(대리인 불가).",
		"Revocation only in branch or MTS, naming the current generator number; no agents."},
	RuleChannel: {"이 채널에서는 처리할 수 없는 업무입니다.",
		"This action is not allowed on this channel."},
	RuleAgent: {"개인 고객의 대리인은 처리불가입니다. 대리인은 법인 고객만 가능합니다.",
		"Agents act only for corporate customers."},
	RuleDocs: {"구비서류가 부족합니다.",
		"Required documents are missing."},
	RuleHours: {"영업점 업무는 영업일 영업시간(09:00–16:00)에만 처리할 수 있습니다.",
		"Branch actions only on business days within business hours."},
	RuleApproval: {"책임자 승인은 영업점 거래에 한 번만, 처리 직원이 아닌 책임자만 할 수 있습니다.",
		"Only branch events are approved, once, and never by the staff member who processed them."},
}
