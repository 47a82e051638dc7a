package cron

import (
	"strings"
	"testing"
	"time"

	robfig "github.com/robfig/cron/v3"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string // a substring; "" means valid
	}{
		{spec: "*/5 * * * *"},
		{spec: "0 3 * * 1-5"},
		{spec: "0 0 1 jan,JUL ?"},
		{spec: "15,45 8-18/2 * * SUN"},
		{spec: "@hourly"},
		{spec: "@every 1h30m"},
		{spec: "CRON_TZ=Europe/Paris 0 9 * * *"},
		{spec: "", wantErr: "empty spec string"},
		{spec: "* * * *", wantErr: "expected exactly 5 fields, found 4"},
		{spec: "0 0 0 1 1 1", wantErr: "expected exactly 5 fields, found 6"},
		{spec: "60 * * * *", wantErr: "end of range (60) above maximum (59)"},
		{spec: "* * 0 * *", wantErr: "beginning of range (0) below minimum (1)"},
		{spec: "* * * * 7", wantErr: "end of range (7) above maximum (6)"},
		{spec: "5-1 * * * *", wantErr: "beginning of range (5) beyond end of range (1)"},
		{spec: "*/0 * * * *", wantErr: "step of range should be a positive number"},
		{spec: "1-2-3 * * * *", wantErr: "too many hyphens"},
		{spec: "*/2/3 * * * *", wantErr: "too many slashes"},
		{spec: "x * * * *", wantErr: "failed to parse int from x"},
		{spec: "@fortnightly", wantErr: "unrecognized descriptor"},
		{spec: "@every fast", wantErr: "failed to parse duration"},
		{spec: "TZ=Mars/Olympus 0 * * * *", wantErr: "provided bad location Mars/Olympus"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := Parse(tt.spec)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Parse(%q): %v", tt.spec, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Parse(%q) = %v, want an error with %q", tt.spec, err, tt.wantErr)
			}
		})
	}
	s, err := Parse("0-10/5 2 * * *")
	if err != nil || fieldsOf(s).Minute != 1|1<<5|1<<10 || fieldsOf(s).Hour != 1<<2 {
		t.Errorf("bits: minute %b hour %b (%v)", fieldsOf(s).Minute, fieldsOf(s).Hour, err)
	}
}

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNext(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	utc := func(s string) time.Time {
		t.Helper()
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	inNY := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, ny) }
	tests := []struct {
		name  string
		spec  string
		after time.Time
		want  time.Time
	}{
		{"every minute, on the minute", "* * * * *", utc("2025-01-01T10:00:00Z"), utc("2025-01-01T10:01:00Z")},
		{"every minute, within a minute", "*/1 * * * *", utc("2025-01-01T10:00:59.999Z"), utc("2025-01-01T10:01:00Z")},
		{"every 5 minutes", "*/5 * * * *", utc("2025-01-01T10:03:00Z"), utc("2025-01-01T10:05:00Z")},
		{"minute list wraps the hour", "15,45 * * * *", utc("2025-01-01T10:50:00Z"), utc("2025-01-01T11:15:00Z")},
		{"hourly", "@hourly", utc("2025-01-01T10:00:00Z"), utc("2025-01-01T11:00:00Z")},
		{"daily wraps the year", "@daily", utc("2025-12-31T00:00:00Z"), utc("2026-01-01T00:00:00Z")},
		{"weekly is Sunday midnight", "@weekly", utc("2025-01-01T00:00:00Z"), utc("2025-01-05T00:00:00Z")},
		{"monthly", "@monthly", utc("2025-01-15T00:00:00Z"), utc("2025-02-01T00:00:00Z")},
		{"yearly", "@yearly", utc("2025-01-01T00:00:00Z"), utc("2026-01-01T00:00:00Z")},
		{"weekdays skip the weekend", "0 9 * * mon-fri", utc("2025-01-03T09:00:00Z"), utc("2025-01-06T09:00:00Z")},
		{"day of month or day of week when both are set", "0 0 13 * fri", utc("2025-01-01T00:00:00Z"), utc("2025-01-03T00:00:00Z")},
		{"day of month and ? day of week", "0 0 13 * ?", utc("2025-01-01T00:00:00Z"), utc("2025-01-13T00:00:00Z")},
		{"February 29th", "0 0 29 2 *", utc("2025-01-01T00:00:00Z"), utc("2028-02-29T00:00:00Z")},
		{"never: February 30th", "0 0 30 2 *", utc("2025-01-01T00:00:00Z"), time.Time{}},
		{"every 90 minutes, to the second", "@every 1h30m", utc("2025-01-01T10:00:00.5Z"), utc("2025-01-01T11:30:00Z")},
		{"every less than a second is a second", "@every 10ms", utc("2025-01-01T10:00:00Z"), utc("2025-01-01T10:00:01Z")},
		// Zones: computed there, returned in the zone of after.
		{"zone ahead of UTC", "TZ=Asia/Kolkata 0 9 * * *", utc("2025-01-01T00:00:00Z"), utc("2025-01-01T03:30:00Z")},
		{"zone behind UTC, next day", "CRON_TZ=America/New_York 0 9 * * *", utc("2025-01-01T15:00:00Z"), utc("2025-01-02T14:00:00Z")},
		{"no zone: the zone of after", "0 9 * * *", inNY(2025, 1, 1, 8, 0), inNY(2025, 1, 1, 9, 0)},
		// New York springs forward at 02:00 EST to 03:00 EDT on 2025-03-09
		// and falls back at 02:00 EDT to 01:00 EST on 2025-11-02.
		{"spring forward: every minute jumps the gap", "TZ=America/New_York * * * * *", inNY(2025, 3, 9, 1, 59), inNY(2025, 3, 9, 3, 0)},
		{"spring forward: a skipped time does not fire that day", "TZ=America/New_York 30 2 * * *", inNY(2025, 3, 9, 0, 0), inNY(2025, 3, 10, 2, 30)},
		{"spring forward: daily 9am keeps local time", "TZ=America/New_York 0 9 * * *", inNY(2025, 3, 8, 9, 0), utc("2025-03-09T13:00:00Z")},
		{"fall back: a repeated time fires again an hour later", "TZ=America/New_York 30 1 * * *", utc("2025-11-02T05:30:00Z"), utc("2025-11-02T06:30:00Z")},
		{"fall back: then the next day", "TZ=America/New_York 30 1 * * *", utc("2025-11-02T06:30:00Z"), utc("2025-11-03T06:30:00Z")},
		{"fall back: hourly counts the repeated hour", "TZ=America/New_York 0 * * * *", utc("2025-11-02T05:00:00Z"), utc("2025-11-02T06:00:00Z")},
		{"Paris spring forward skips 02:00", "TZ=Europe/Paris 0 2 * * *", utc("2025-03-29T12:00:00Z"), utc("2025-03-31T00:00:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Next(tt.after)
			if !got.Equal(tt.want) {
				t.Errorf("Next(%v) = %v, want %v", tt.after, got, tt.want)
			}
			if !got.IsZero() && got.Location() != tt.after.Location() {
				t.Errorf("Next(%v) is in %v, want the zone of after", tt.after, got.Location())
			}
		})
	}
}

// fieldsOf is the fields of a five-field schedule.
func fieldsOf(s *Schedule) *robfig.SpecSchedule {
	sp, _ := s.s.(*robfig.SpecSchedule)
	if sp == nil {
		sp = &robfig.SpecSchedule{}
	}
	return sp
}

// every is an @every schedule's interval, or 0.
func (s *Schedule) every() time.Duration {
	if d, ok := s.s.(robfig.ConstantDelaySchedule); ok {
		return d.Delay
	}
	return 0
}

// matches reports whether s fires at t (its minute), read in loc.
func (s *Schedule) matches(t time.Time, loc *time.Location) bool {
	t, sp := t.In(loc), fieldsOf(s)
	return t.Second() == 0 && t.Nanosecond() == 0 &&
		1<<uint(t.Minute())&sp.Minute != 0 && 1<<uint(t.Hour())&sp.Hour != 0 &&
		1<<uint(t.Month())&sp.Month != 0 && s.dayMatches(t)
}

// dayMatches is cron's day rule: when either day field is * (or ?), both
// must match; otherwise either may.
func (s *Schedule) dayMatches(t time.Time) bool {
	const star = 1 << 63
	sp := fieldsOf(s)
	dom, dow := 1<<uint(t.Day())&sp.Dom != 0, 1<<uint(t.Weekday())&sp.Dow != 0
	if sp.Dom&star != 0 || sp.Dow&star != 0 {
		return dom && dow
	}
	return dom || dow
}

// fuzzZones are zones whose offsets are whole minutes since 1970 and whose
// DST changes are not at midnight: there robfig/cron's Next may skip a day.
var fuzzZones = []string{"UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"}

// notMinimal are zones where Next, as robfig/cron's, may skip a firing
// time: Lord Howe's DST moves clocks by 30 minutes, and Next's hour-by-hour
// search then lands on the half hour (daily at midnight skips the day
// after the change), a Kubernetes behaviour kept rather than fixed.
var notMinimal = map[string]bool{"Australia/Lord_Howe": true}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "@every 1h", "TZ=UTC 0 0 1 jan mon", "1-2/3,4 * ? * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		_, _ = Parse(spec)
	})
}

// FuzzNext checks Next against the schedule it parsed: the result is after
// the given time, fires by the schedule in the schedule's zone, and is the
// first such time (checked minute by minute up to two days ahead, outside
// notMinimal); the zero
// time only when no day of the next four years has a firing day.
func FuzzNext(f *testing.F) {
	for _, c := range []struct {
		spec string
		sec  int64
		zone uint8
	}{
		{"* * * * *", 1735725600, 0},
		{"*/7 3-5 * * *", 1741500000, 1},
		{"30 1 * * *", 1762059600, 1},
		{"30 2 * * *", 1741496400, 1},
		{"0 2 * * sun", 1743296400, 2},
		{"45 2 * * *", 1743865200, 4},
		{"0 0 13 * fri", 1735689600, 3},
		{"0 0 30 2 *", 1735689600, 0},
		{"@every 1m30s", 1735689600, 5},
		{"@weekly", 1735689600, 5},
	} {
		f.Add(c.spec, c.sec, c.zone)
	}
	f.Fuzz(func(t *testing.T, spec string, sec int64, zone uint8) {
		if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
			return // the zone comes from the zone argument
		}
		loc := mustLoad(t, fuzzZones[int(zone)%len(fuzzZones)])
		s, err := Parse("TZ=" + loc.String() + " " + spec)
		if err != nil {
			return
		}
		const start, end = 0, 4102444800 // 1970 to 2100
		after := time.Unix(start+(sec%(end-start)+(end-start))%(end-start), 0).UTC()
		next := s.Next(after)
		if every := s.every(); every > 0 {
			if d := next.Sub(after); d <= 0 || d > every || next.Nanosecond() != 0 {
				t.Fatalf("Next(%v) = %v every %v", after, next, every)
			}
			return
		}
		if next.IsZero() {
			if sp := fieldsOf(s); sp.Minute&^(1<<63) == 0 || sp.Hour&^(1<<63) == 0 {
				return // robfig/cron (so Kubernetes) takes "," as a field of no value: never
			}
			day := time.Date(after.In(loc).Year(), after.In(loc).Month(), after.In(loc).Day(), 12, 0, 0, 0, loc)
			for range 4 * 365 {
				day = day.AddDate(0, 0, 1)
				if 1<<uint(day.Month())&fieldsOf(s).Month != 0 && s.dayMatches(day) {
					t.Fatalf("Next(%v) = zero, but %s fires on %v", after, spec, day.Format(time.DateOnly))
				}
			}
			return
		}
		if !next.After(after) {
			t.Fatalf("Next(%v) = %v, not after", after, next)
		}
		if !s.matches(next, loc) {
			t.Fatalf("Next(%v) = %v (%v), which %q does not fire at", after, next, next.In(loc), spec)
		}
		if next.Sub(after) > 48*time.Hour || notMinimal[loc.String()] {
			return
		}
		for m := after.Truncate(time.Minute).Add(time.Minute); m.Before(next); m = m.Add(time.Minute) {
			if s.matches(m, loc) {
				t.Fatalf("Next(%v) = %v (%v), but %q fires earlier at %v", after, next, next.In(loc), spec, m.In(loc))
			}
		}
	})
}
