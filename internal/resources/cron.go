package resources

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A cron schedule parser with the grammar and the error messages of
// robfig/cron's ParseStandard, which Kubernetes validates CronJob schedules
// with: five fields (minute hour day-of-month month day-of-week), each a
// comma-separated list of *, ?, N, N-M with an optional /step, month and
// weekday names; or a descriptor (@hourly, @every 1h30m, ...); optionally
// after TZ= or CRON_TZ=. The CronJob controller will compute run times from
// cronSchedule.

// cronSchedule is a parsed schedule: one bit per allowed value of each field,
// or a fixed interval.
type cronSchedule struct {
	minute, hour, dom, month, dow uint64
	every                         time.Duration
	loc                           *time.Location
}

type cronBounds struct {
	min, max uint
	names    map[string]uint
}

var (
	cronMinutes = cronBounds{0, 59, nil}
	cronHours   = cronBounds{0, 23, nil}
	cronDom     = cronBounds{1, 31, nil}
	cronMonths  = cronBounds{1, 12, map[string]uint{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12,
	}}
	cronDow = cronBounds{0, 6, map[string]uint{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

// cronStar marks a field given as * or ?, which matters for day matching.
const cronStar = 1 << 63

func parseCron(spec string) (*cronSchedule, error) {
	if len(spec) == 0 {
		return nil, fmt.Errorf("empty spec string")
	}
	loc := time.Local
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		eq := strings.Index(spec, "=")
		sp := strings.Index(spec, " ")
		if sp < 0 {
			sp = len(spec)
		}
		name := spec[eq+1 : sp]
		var err error
		if loc, err = time.LoadLocation(name); err != nil {
			return nil, fmt.Errorf("provided bad location %s: %v", name, err)
		}
		spec = strings.TrimSpace(spec[sp:])
	}
	if strings.HasPrefix(spec, "@") {
		return parseCronDescriptor(spec, loc)
	}
	fs := strings.Fields(spec)
	if len(fs) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fs), fs)
	}
	s := &cronSchedule{loc: loc}
	for i, f := range []struct {
		bits *uint64
		b    cronBounds
	}{{&s.minute, cronMinutes}, {&s.hour, cronHours}, {&s.dom, cronDom}, {&s.month, cronMonths}, {&s.dow, cronDow}} {
		bits, err := parseCronField(fs[i], f.b)
		if err != nil {
			return nil, err
		}
		*f.bits = bits
	}
	return s, nil
}

func parseCronDescriptor(d string, loc *time.Location) (*cronSchedule, error) {
	all := func(b cronBounds) uint64 { return cronBits(b.min, b.max, 1) | cronStar }
	s := &cronSchedule{loc: loc, minute: 1, hour: 1, dom: 1 << 1, month: all(cronMonths), dow: all(cronDow)}
	switch d {
	case "@yearly", "@annually":
		s.month = 1 << 1
	case "@monthly":
	case "@weekly":
		s.dom, s.dow = all(cronDom), 1
	case "@daily", "@midnight":
		s.dom = all(cronDom)
	case "@hourly":
		s.dom, s.hour = all(cronDom), all(cronHours)
	default:
		const every = "@every "
		if !strings.HasPrefix(d, every) {
			return nil, fmt.Errorf("unrecognized descriptor: %s", d)
		}
		dur, err := time.ParseDuration(d[len(every):])
		if err != nil {
			return nil, fmt.Errorf("failed to parse duration %s: %s", d, err)
		}
		return &cronSchedule{every: dur, loc: loc}, nil
	}
	return s, nil
}

func parseCronField(field string, b cronBounds) (uint64, error) {
	var bits uint64
	for _, expr := range strings.Split(field, ",") {
		r, err := parseCronRange(expr, b)
		if err != nil {
			return 0, err
		}
		bits |= r
	}
	return bits, nil
}

func parseCronRange(expr string, b cronBounds) (uint64, error) {
	rangeAndStep := strings.Split(expr, "/")
	lowAndHigh := strings.Split(rangeAndStep[0], "-")
	var start, end, step uint
	var extra uint64
	var err error
	if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
		start, end, extra = b.min, b.max, cronStar
	} else {
		if start, err = cronIntOrName(lowAndHigh[0], b.names); err != nil {
			return 0, err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = cronIntOrName(lowAndHigh[1], b.names); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("too many hyphens: %s", expr)
		}
	}
	switch len(rangeAndStep) {
	case 1:
		step = 1
	case 2:
		if step, err = cronInt(rangeAndStep[1]); err != nil {
			return 0, err
		}
		// "N/step" means "N-max/step".
		if len(lowAndHigh) == 1 {
			end = b.max
		}
		if step > 1 {
			extra = 0
		}
	default:
		return 0, fmt.Errorf("too many slashes: %s", expr)
	}
	switch {
	case start < b.min:
		return 0, fmt.Errorf("beginning of range (%d) below minimum (%d): %s", start, b.min, expr)
	case end > b.max:
		return 0, fmt.Errorf("end of range (%d) above maximum (%d): %s", end, b.max, expr)
	case start > end:
		return 0, fmt.Errorf("beginning of range (%d) beyond end of range (%d): %s", start, end, expr)
	case step == 0:
		return 0, fmt.Errorf("step of range should be a positive number: %s", expr)
	}
	return cronBits(start, end, step) | extra, nil
}

func cronIntOrName(expr string, names map[string]uint) (uint, error) {
	if n, ok := names[strings.ToLower(expr)]; ok {
		return n, nil
	}
	return cronInt(expr)
}

func cronInt(expr string) (uint, error) {
	n, err := strconv.Atoi(expr)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %s", expr, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, expr)
	}
	return uint(n), nil
}

func cronBits(min, max, step uint) uint64 {
	var bits uint64
	for i := min; i <= max && i < 63; i += step {
		bits |= 1 << i
	}
	return bits
}
