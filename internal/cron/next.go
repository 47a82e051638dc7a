package cron

import "time"

// Next returns the first time after `after` at which s fires, in the zone
// of `after`, computed in the schedule's zone; the zero time if s never
// fires in the next five years (say "0 0 30 2 *").
//
// It is robfig/cron's SpecSchedule.Next, so that jobs start when they
// would under Kubernetes, daylight saving time included: a wall-clock time
// a spring-forward skips does not fire that day, and one a fall-back
// repeats fires twice (once per offset).
func (s *Schedule) Next(after time.Time) time.Time {
	if s.every > 0 {
		return after.Add(s.every - time.Duration(after.Nanosecond()))
	}
	origLoc := after.Location()
	loc := origLoc
	t := after
	if s.loc != nil {
		loc = s.loc
		t = t.In(loc)
	}

	// The earliest candidate is the next whole second.
	t = t.Add(time.Second - time.Duration(t.Nanosecond()))
	// Once a field has moved, the fields below it restart from their
	// lowest value.
	added := false
	yearLimit := t.Year() + 5

wrap:
	if t.Year() > yearLimit {
		return time.Time{}
	}

	for 1<<uint(t.Month())&s.month == 0 {
		if !added {
			added = true
			t = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
		}
		t = t.AddDate(0, 1, 0)
		if t.Month() == time.January {
			goto wrap
		}
	}

	for !s.dayMatches(t) {
		if !added {
			added = true
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
		}
		t = t.AddDate(0, 0, 1)
		// Where a DST change skips midnight, AddDate lands at 01:00 or
		// 23:00: move back to the day's first hour.
		if t.Hour() != 0 {
			if t.Hour() > 12 {
				t = t.Add(time.Duration(24-t.Hour()) * time.Hour)
			} else {
				t = t.Add(time.Duration(-t.Hour()) * time.Hour)
			}
		}
		if t.Day() == 1 {
			goto wrap
		}
	}

	for 1<<uint(t.Hour())&s.hour == 0 {
		if !added {
			added = true
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, loc)
		}
		t = t.Add(time.Hour)
		if t.Hour() == 0 {
			goto wrap
		}
	}

	for 1<<uint(t.Minute())&s.minute == 0 {
		if !added {
			added = true
			t = t.Truncate(time.Minute)
		}
		t = t.Add(time.Minute)
		if t.Minute() == 0 {
			goto wrap
		}
	}

	// Seconds: only 0 fires.
	for t.Second() != 0 {
		if !added {
			added = true
			t = t.Truncate(time.Second)
		}
		t = t.Add(time.Second)
		if t.Second() == 0 {
			goto wrap
		}
	}

	return t.In(origLoc)
}

// dayMatches is cron's day rule: when either day field is * (or ?), both
// must match; when both are restricted, either may.
func (s *Schedule) dayMatches(t time.Time) bool {
	dom := 1<<uint(t.Day())&s.dom > 0
	dow := 1<<uint(t.Weekday())&s.dow > 0
	if s.dom&star > 0 || s.dow&star > 0 {
		return dom && dow
	}
	return dom || dow
}
