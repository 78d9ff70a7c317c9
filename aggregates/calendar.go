package aggregates

import (
	"fmt"
	"time"
)

// ClosedDay is a weekday on which the market, and so every branch, is closed.
type ClosedDay struct {
	Date   string `json:"date"` // YYYY-MM-DD in the calendar's zone
	Reason string `json:"reason"`
}

// CalendarYear is one year's closing days as a source published them. A
// provisional year was computed from the statutory calendar (lunar dates,
// substitute-holiday rules) before the exchange's notice; an operator
// replaces it with the official list through the policy file.
type CalendarYear struct {
	Year        int         `json:"year"`
	Source      string      `json:"source"`
	Provisional bool        `json:"provisional,omitempty"`
	Closed      []ClosedDay `json:"closed"`
}

// CalendarState says whether the policy knows the closing days of a year
// (R-HOURS): a year past the last known one is reported on /readyz and in
// the log, since its weekdays can only be assumed open.
type CalendarState struct {
	Year         int  `json:"year"`
	KnownThrough int  `json:"known_through"`
	Known        bool `json:"known"`
	Provisional  bool `json:"provisional"`
}

// Warning returns "" for a known, official year, or what an operator must do.
func (s CalendarState) Warning() string {
	switch {
	case !s.Known:
		return fmt.Sprintf("the market calendar has no closing days for %d (known through %d): weekdays are assumed open; load the exchange's list with the policy file", s.Year, s.KnownThrough)
	case s.Provisional:
		return fmt.Sprintf("the market calendar for %d is provisional (computed); load the exchange's notice with the policy file when it is published", s.Year)
	}
	return ""
}

// Calendar returns the state of the year of t in the calendar's zone.
func (p *Policy) Calendar(t time.Time) CalendarState {
	year := t.In(p.loc).Year()
	s := CalendarState{Year: year}
	for _, y := range p.Closings {
		s.KnownThrough = max(s.KnownThrough, y.Year)
		if y.Year == year {
			s.Known, s.Provisional = true, y.Provisional
		}
	}
	return s
}

// krxClosings are the Korea Exchange's closing days on weekdays (weekends
// are closed anyway): public and substitute holidays, election days, Labour
// Day and the year-end closing day. See ../shared/calendar-krx.md.
func krxClosings() []CalendarYear {
	return []CalendarYear{
		{Year: 2026, Source: "KRX 2026 closing-day notice (휴장일), as reported in the press; calendar-krx.md", Closed: []ClosedDay{
			{"2026-01-01", "신정"},
			{"2026-02-16", "설날 연휴"}, {"2026-02-17", "설날"}, {"2026-02-18", "설날 연휴"},
			{"2026-03-02", "삼일절 대체공휴일"},
			{"2026-05-01", "근로자의 날"},
			{"2026-05-05", "어린이날"},
			{"2026-05-25", "부처님오신날 대체공휴일"},
			{"2026-06-03", "제9회 전국동시지방선거"},
			{"2026-08-17", "광복절 대체공휴일"},
			{"2026-09-24", "추석 연휴"}, {"2026-09-25", "추석"},
			{"2026-10-05", "개천절 대체공휴일"},
			{"2026-10-09", "한글날"},
			{"2026-12-25", "성탄절"},
			{"2026-12-31", "연말 휴장일"},
		}},
		{Year: 2027, Provisional: true, Source: "computed from the Public Holidays Act (관공서의 공휴일에 관한 규정) and the lunar calendar of the Korea Astronomy and Space Science Institute; no election scheduled; replace with KRX's notice (published December 2026)", Closed: []ClosedDay{
			{"2027-01-01", "신정"},
			{"2027-02-08", "설날 연휴"}, {"2027-02-09", "설날 대체공휴일"},
			{"2027-03-01", "삼일절"},
			{"2027-05-05", "어린이날"},
			{"2027-05-13", "부처님오신날"},
			{"2027-08-16", "광복절 대체공휴일"},
			{"2027-09-14", "추석 연휴"}, {"2027-09-15", "추석"}, {"2027-09-16", "추석 연휴"},
			{"2027-10-04", "개천절 대체공휴일"},
			{"2027-10-11", "한글날 대체공휴일"},
			{"2027-12-27", "성탄절 대체공휴일"},
			{"2027-12-31", "연말 휴장일"},
		}},
	}
}

// validateClosings checks every closing year and collects its days.
func (p *Policy) validateClosings() []error {
	var errs []error
	p.closed = map[string]bool{}
	years := map[int]bool{}
	for i, y := range p.Closings {
		if years[y.Year] {
			errs = append(errs, fmt.Errorf("calendar[%d]: year %d listed twice", i, y.Year))
		}
		years[y.Year] = true
		if y.Source == "" {
			errs = append(errs, fmt.Errorf("calendar[%d]: source required (where the list comes from)", i))
		}
		for _, d := range y.Closed {
			t, err := time.Parse(time.DateOnly, d.Date)
			if err != nil || t.Year() != y.Year {
				errs = append(errs, fmt.Errorf("calendar[%d]: %q is not a date YYYY-MM-DD of %d", i, d.Date, y.Year))
			}
			p.closed[d.Date] = true
		}
	}
	for _, h := range p.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			errs = append(errs, fmt.Errorf("holidays: %q is not YYYY-MM-DD", h))
		}
		p.closed[h] = true
	}
	return errs
}
