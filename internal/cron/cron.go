// Package cron parses cron schedules the way Kubernetes reads a CronJob's
// spec.schedule and tells when they fire: the grammar, error messages and
// Next of robfig/cron v3's ParseStandard, which the API server validates
// with and kube-controller-manager's CronJob controller schedules with.
//
// A schedule is five fields (minute hour day-of-month month day-of-week),
// each a comma-separated list of *, ?, N, N-M with an optional /step, with
// month and weekday names; or a descriptor (@yearly, @annually, @monthly,
// @weekly, @daily, @midnight, @hourly, @every <duration>); optionally after
// TZ=<zone> or CRON_TZ=<zone>. Seconds are always 0.
package cron

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	// Schedules name zones of the tz database; embed it so that they do
	// not depend on the host's /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Schedule is a parsed schedule: one bit per allowed value of each field,
// or a fixed interval.
type Schedule struct {
	minute, hour, dom, month, dow uint64
	every                         time.Duration
	// loc is the TZ= zone; nil means the zone of the time Next is given,
	// as robfig/cron treats time.Local: kube-controller-manager's times are
	// all local, so a schedule without a zone is in the controller's zone.
	loc *time.Location
}

type bounds struct {
	min, max uint
	names    map[string]uint
}

var (
	minutes    = bounds{0, 59, nil}
	hours      = bounds{0, 23, nil}
	daysOfMon  = bounds{1, 31, nil}
	months     = bounds{1, 12, map[string]uint{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	daysOfWeek = bounds{0, 6, map[string]uint{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

// star marks a field given as * or ?, which matters for day matching.
const star = 1 << 63

// Parse parses a schedule. The errors are robfig/cron's, which the API
// server returns for an invalid spec.schedule.
func Parse(spec string) (*Schedule, error) {
	if len(spec) == 0 {
		return nil, fmt.Errorf("empty spec string")
	}
	var loc *time.Location
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		eq := strings.Index(spec, "=")
		sp := strings.Index(spec, " ")
		if sp < 0 {
			sp = len(spec)
		}
		name := spec[eq+1 : sp]
		l, err := time.LoadLocation(name)
		if err != nil {
			return nil, fmt.Errorf("provided bad location %s: %v", name, err)
		}
		if l != time.Local {
			loc = l
		}
		spec = strings.TrimSpace(spec[sp:])
	}
	if strings.HasPrefix(spec, "@") {
		return parseDescriptor(spec, loc)
	}
	fs := strings.Fields(spec)
	if len(fs) != 5 {
		return nil, fmt.Errorf("expected exactly 5 fields, found %d: %s", len(fs), fs)
	}
	s := &Schedule{loc: loc}
	for i, f := range []struct {
		bits *uint64
		b    bounds
	}{{&s.minute, minutes}, {&s.hour, hours}, {&s.dom, daysOfMon}, {&s.month, months}, {&s.dow, daysOfWeek}} {
		bits, err := parseField(fs[i], f.b)
		if err != nil {
			return nil, err
		}
		*f.bits = bits
	}
	return s, nil
}

func parseDescriptor(d string, loc *time.Location) (*Schedule, error) {
	all := func(b bounds) uint64 { return bitRange(b.min, b.max, 1) | star }
	s := &Schedule{loc: loc, minute: 1, hour: 1, dom: 1 << 1, month: all(months), dow: all(daysOfWeek)}
	switch d {
	case "@yearly", "@annually":
		s.month = 1 << 1
	case "@monthly":
	case "@weekly":
		s.dom, s.dow = all(daysOfMon), 1
	case "@daily", "@midnight":
		s.dom = all(daysOfMon)
	case "@hourly":
		s.dom, s.hour = all(daysOfMon), all(hours)
	default:
		const every = "@every "
		if !strings.HasPrefix(d, every) {
			return nil, fmt.Errorf("unrecognized descriptor: %s", d)
		}
		dur, err := time.ParseDuration(d[len(every):])
		if err != nil {
			return nil, fmt.Errorf("failed to parse duration %s: %s", d, err)
		}
		// robfig/cron's Every: at least a second, whole seconds.
		dur = max(dur, time.Second)
		return &Schedule{every: dur - dur%time.Second, loc: loc}, nil
	}
	return s, nil
}

func parseField(field string, b bounds) (uint64, error) {
	var bits uint64
	for _, expr := range strings.Split(field, ",") {
		r, err := parseRange(expr, b)
		if err != nil {
			return 0, err
		}
		bits |= r
	}
	return bits, nil
}

func parseRange(expr string, b bounds) (uint64, error) {
	rangeAndStep := strings.Split(expr, "/")
	lowAndHigh := strings.Split(rangeAndStep[0], "-")
	var start, end, step uint
	var extra uint64
	var err error
	if lowAndHigh[0] == "*" || lowAndHigh[0] == "?" {
		start, end, extra = b.min, b.max, star
	} else {
		if start, err = intOrName(lowAndHigh[0], b.names); err != nil {
			return 0, err
		}
		switch len(lowAndHigh) {
		case 1:
			end = start
		case 2:
			if end, err = intOrName(lowAndHigh[1], b.names); err != nil {
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
		if step, err = parseInt(rangeAndStep[1]); err != nil {
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
	return bitRange(start, end, step) | extra, nil
}

func intOrName(expr string, names map[string]uint) (uint, error) {
	if n, ok := names[strings.ToLower(expr)]; ok {
		return n, nil
	}
	return parseInt(expr)
}

func parseInt(expr string) (uint, error) {
	n, err := strconv.Atoi(expr)
	if err != nil {
		return 0, fmt.Errorf("failed to parse int from %s: %s", expr, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative number (%d) not allowed: %s", n, expr)
	}
	return uint(n), nil
}

func bitRange(min, max, step uint) uint64 {
	var bits uint64
	for i := min; i <= max && i < 63; i += step {
		bits |= 1 << i
	}
	return bits
}
