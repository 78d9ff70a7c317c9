package aggregates

import (
	"strings"
	"testing"
	"time"
)

// seoul returns 10:00 KST on the given date.
func seoul(date string) time.Time {
	t, err := time.Parse(time.DateOnly, date)
	if err != nil {
		panic(err)
	}
	return t.Add(time.Hour) // 10:00 KST is 01:00 UTC
}

// TestMarketCalendar checks the default policy's business days against the
// exchange's closing days (calendar-krx.md) and the computed 2027.
func TestMarketCalendar(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy(home)
	for date, open := range map[string]bool{
		"2026-01-02": true,  // first trading day of 2026
		"2026-02-17": false, // 설날
		"2026-03-02": false, // 삼일절 substitute
		"2026-05-01": false, // Labour Day
		"2026-06-03": false, // local elections
		"2026-06-04": true,
		"2026-08-17": false, // 광복절 substitute
		"2026-09-24": false, // 추석
		"2026-10-05": false, // 개천절 substitute
		"2026-12-30": true,
		"2026-12-31": false, // year-end closing
		"2027-01-01": false,
		"2027-01-04": true,
		"2027-02-09": false, // 설날 substitute
		"2027-05-13": false, // 부처님오신날
		"2027-09-16": false, // 추석
		"2027-12-27": false, // 성탄절 substitute
		"2027-12-31": false,
		"2028-01-03": true, // unknown year: weekdays assumed open, and reported
	} {
		if got := p.BusinessTime(seoul(date)); got != open {
			t.Errorf("%s: business time %v, want %v", date, got, open)
		}
	}
	for _, tc := range []struct {
		date        string
		known, prov bool
		warning     string
	}{
		{"2026-11-26", true, false, ""},
		{"2027-03-02", true, true, "provisional"},
		{"2028-01-03", false, false, "no closing days for 2028 (known through 2027)"},
	} {
		s := p.Calendar(seoul(tc.date))
		if s.Known != tc.known || s.Provisional != tc.prov || s.KnownThrough != 2027 || !strings.Contains(s.Warning(), tc.warning) || (tc.warning == "") != (s.Warning() == "") {
			t.Errorf("%s: %+v %q", tc.date, s, s.Warning())
		}
	}
	// The year is the calendar's: 2027-01-01 00:30 KST is still 2026 in UTC.
	if s := p.Calendar(time.Date(2026, 12, 31, 15, 30, 0, 0, time.UTC)); s.Year != 2027 {
		t.Errorf("year in Seoul: %+v", s)
	}
}

func TestPolicyCalendarFile(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy([]byte(`{"calendar":[{"year":2028,"source":"KRX notice","closed":[{"date":"2028-01-03","reason":"test"}]}],"holidays":["2028-01-04"]}`), home)
	if err != nil {
		t.Fatal(err)
	}
	if p.BusinessTime(seoul("2028-01-03")) || p.BusinessTime(seoul("2028-01-04")) || !p.BusinessTime(seoul("2028-01-05")) {
		t.Error("a loaded year's closing days and extra holidays must close the branch")
	}
	if s := p.Calendar(seoul("2026-11-26")); s.Known || s.KnownThrough != 2028 {
		t.Errorf("a file's calendar replaces the default one: %+v", s)
	}
	for body, want := range map[string]string{
		`{"calendar":[{"year":2028,"closed":[]}]}`:                                                     "source required",
		`{"calendar":[{"year":2028,"source":"x","closed":[{"date":"2029-01-01","reason":"x"}]}]}`:      "not a date YYYY-MM-DD of 2028",
		`{"calendar":[{"year":2028,"source":"x","closed":[]},{"year":2028,"source":"y","closed":[]}]}`: "listed twice",
		`{"holidays":["2028-13-01"]}`:                                                                  "not YYYY-MM-DD",
	} {
		if _, err := ParsePolicy([]byte(body), home); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// TestPolicyValidation: each limit's boundary, the hours' order, the skew's sign.
func TestPolicyValidation(t *testing.T) {
	t.Parallel()
	for body, ok := range map[string]bool{
		`{"device_error_limit":1,"mobile_pin_limit":1,"mobile_validity_years":1}`: true,
		`{"device_error_limit":0}`:    false,
		`{"mobile_pin_limit":0}`:      false,
		`{"mobile_validity_years":0}`: false,
		`{"business_hours":{"timezone":"Asia/Seoul","open":"09:00","close":"09:00","days":["MON"]}}`:   false,
		`{"business_hours":{"timezone":"Asia/Seoul","open":"09:00","close":"09:01","days":["MON"]}}`:   true,
		`{"business_hours":{"timezone":"Asia/Seoul","open":"9am","close":"16:00","days":["MON"]}}`:     false,
		`{"business_hours":{"timezone":"Asia/Seoul","open":"09:00","close":"16:00","days":["MOON"]}}`:  false,
		`{"business_hours":{"timezone":"Mars/Olympus","open":"09:00","close":"16:00","days":["MON"]}}`: false,
		`{"occurred_at":{"max_skew":"0s","horizon":"2000-01-01"}}`:                                     true,
		`{"occurred_at":{"max_skew":"-1s","horizon":"2000-01-01"}}`:                                    false,
		`{"occurred_at":{"max_skew":"5m","horizon":"2000-13-01"}}`:                                     false,
		`{"home_institution":"ibks"}`:       false,
		`{"channels":{"register":["FAX"]}}`: false,
	} {
		if _, err := ParsePolicy([]byte(body), home); (err == nil) != ok {
			t.Errorf("%s: %v, want valid %v", body, err, ok)
		}
	}
}
