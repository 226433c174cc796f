package autodial

import (
	"fmt"
	"time"
)

// Window is when calls may be placed, per weekday (Bulutfon's
// {mon..sun}_active/_start/_finish). Times are "HH:MM" in kanca's zone
// (--tz). A day not active gets no calls.
type Window struct {
	Days [7]Day `json:"days"` // Sunday first, as time.Weekday
}

// Day is one weekday's window; Start == Finish == "" is all day.
type Day struct {
	Active bool   `json:"active"`
	Start  string `json:"start,omitempty"`
	Finish string `json:"finish,omitempty"`
}

// DayNames are the Bulutfon field prefixes, in time.Weekday order.
var DayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q: want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

func (w *Window) check() error {
	any := false
	for i, d := range w.Days {
		if !d.Active {
			continue
		}
		any = true
		if d.Start == "" && d.Finish == "" {
			continue
		}
		a, err := clock(d.Start)
		if err != nil {
			return fieldErr(DayNames[i]+"_start", "%s", err)
		}
		b, err := clock(d.Finish)
		if err != nil {
			return fieldErr(DayNames[i]+"_finish", "%s", err)
		}
		if b <= a {
			return fieldErr(DayNames[i]+"_finish", "%s is not after %s", d.Finish, d.Start)
		}
	}
	if !any {
		return fieldErr("window", "no day is active: no call could ever be placed")
	}
	return nil
}

// Next is the first moment at or after now, in loc, that the window
// allows.
func (w *Window) Next(now time.Time, loc *time.Location) time.Time {
	if w == nil {
		return now
	}
	now = now.In(loc)
	for i := 0; i < 8; i++ {
		day := time.Date(now.Year(), now.Month(), now.Day()+i, 0, 0, 0, 0, loc)
		d := w.Days[day.Weekday()]
		if !d.Active {
			continue
		}
		start, end := day, day.AddDate(0, 0, 1)
		if d.Start != "" {
			a, _ := clock(d.Start)
			b, _ := clock(d.Finish)
			start = day.Add(time.Duration(a) * time.Minute)
			end = day.Add(time.Duration(b) * time.Minute)
		}
		switch {
		case now.Before(start):
			return start
		case now.Before(end):
			return now
		}
	}
	return now // unreachable for a checked window
}
