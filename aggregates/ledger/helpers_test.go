package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/otpledger/otpledger/events"
)

// TestDefaultBackoff: attempt n waits in [b/2, 3b/2) with b = 1 ms × 2^(n-1),
// capped at 64 ms, and the waits are spread over that range.
func TestDefaultBackoff(t *testing.T) {
	for n := 1; n <= 10; n++ {
		base := time.Millisecond << min(n-1, 6)
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 2000 {
			d := defaultBackoff(n)
			if d < base/2 || d >= base/2+base {
				t.Fatalf("attempt %d waits %v, outside [%v, %v)", n, d, base/2, base/2+base)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo > base/2+base/10 || hi < base/2+base*9/10 {
			t.Errorf("attempt %d: 2000 waits within [%v, %v] only, not spread over [%v, %v)", n, lo, hi, base/2, base/2+base)
		}
	}
}

func ref(i int) events.AggregateRef {
	return events.AggregateRef{Kind: events.KindDevice, Key: fmt.Sprintf("OTP.%012d", i)}
}

// TestLRU: the cache holds at most its size, drops the least recently used
// (a get or a put counts as a use), replaces in place, and removes.
func TestLRU(t *testing.T) {
	c := newLRU[int](3)
	for i := range 3 {
		c.put(ref(i), i)
	}
	c.get(ref(0))     // 0 is now the most recent: 1 is the oldest
	c.put(ref(2), 20) // a replacement uses 2, evicts nothing
	c.put(ref(3), 3)  // evicts 1
	for i, want := range map[int]int{0: 0, 2: 20, 3: 3} {
		if v, ok := c.get(ref(i)); !ok || v != want {
			t.Errorf("entry %d: %d %v, want %d", i, v, ok, want)
		}
	}
	if _, ok := c.get(ref(1)); ok {
		t.Error("the least recently used entry was kept past the size")
	}
	if c.order.Len() != 3 || len(c.items) != 3 {
		t.Errorf("holds %d (%d indexed), want 3", c.order.Len(), len(c.items))
	}
	c.remove(ref(2))
	c.remove(ref(9)) // absent: nothing happens
	if _, ok := c.get(ref(2)); ok || c.order.Len() != 2 || len(c.items) != 2 {
		t.Errorf("after a removal: holds %d (%d indexed)", c.order.Len(), len(c.items))
	}
}

// TestRecentAnswers: the answers an aggregate keeps are those of the
// duplicate window (24 h, its edge kept), at most 64, the newest kept; the
// list may have dropped one still in the window only when full with a
// recent oldest.
func TestRecentAnswers(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var l loaded[struct{}]
	l.snap.Recent = []remembered{
		{Key: "old", At: now.Add(-recentWindow - time.Nanosecond)},
		{Key: "edge", At: now.Add(-recentWindow)},
	}
	s := l.next(struct{}{}, "", "", "", 0, nil, now)
	if len(s.Recent) != 1 || s.Recent[0].Key != "edge" {
		t.Fatalf("kept %v, want the answer at the window's edge only", s.Recent)
	}
	s = l.next(struct{}{}, "", "k", "c", 2, []Event{{Sequence: 1}}, now)
	if len(s.Recent) != 2 || s.Recent[1].Key != "k" || s.Recent[1].Command != "c" || s.Recent[1].Pos != 2 || !s.Recent[1].At.Equal(now) {
		t.Fatalf("the new answer: %+v", s.Recent)
	}

	l.snap.Recent = nil
	for i := range recentMax {
		l.snap.Recent = append(l.snap.Recent, remembered{Key: fmt.Sprint(i), At: now.Add(-time.Hour)})
	}
	if !l.evicted(now) {
		t.Error("a full list whose oldest is an hour old may have dropped an answer")
	}
	if l.evicted(now.Add(recentWindow - time.Hour)) {
		t.Error("a full list whose oldest left the window dropped nothing in it")
	}
	if !l.evicted(now.Add(recentWindow - time.Hour - time.Nanosecond)) {
		t.Error("a full list whose oldest is just inside the window may have dropped an answer")
	}
	short := loaded[struct{}]{snap: snapshot[struct{}]{Recent: l.snap.Recent[1:]}}
	if short.evicted(now) {
		t.Error("a list below the maximum dropped nothing")
	}
	s = l.next(struct{}{}, "", "new", "c", 0, nil, now)
	if len(s.Recent) != recentMax || s.Recent[0].Key != "1" || s.Recent[recentMax-1].Key != "new" {
		t.Errorf("a full list after one more: %d answers from %q to %q", len(s.Recent), s.Recent[0].Key, s.Recent[len(s.Recent)-1].Key)
	}
	s = short.next(struct{}{}, "", "new", "c", 0, nil, now)
	if len(s.Recent) != recentMax || s.Recent[0].Key != "1" {
		t.Errorf("a list one below the maximum after one more: %d answers from %q", len(s.Recent), s.Recent[0].Key)
	}
}

// TestRememberedAnswer: a remembered answer's sequences are relative to
// the message that carried it.
func TestRememberedAnswer(t *testing.T) {
	r := remembered{Base: 100, Events: []Event{{Sequence: 0}, {Sequence: 2}}}
	a := r.answer()
	if a.Events[0].Sequence != 100 || a.Events[1].Sequence != 102 || r.Events[1].Sequence != 2 {
		t.Errorf("answer %+v from %+v", a.Events, r.Events)
	}
}
