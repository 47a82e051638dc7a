// Package cron parses a CronJob's spec.schedule and tells when it fires,
// with robfig/cron v3's ParseStandard: the library kube-apiserver validates
// schedules with and kube-controller-manager's CronJob controller
// schedules with, so that errors and firing times, daylight saving time
// included, are upstream's.
//
// A schedule is five fields (minute hour day-of-month month day-of-week),
// each a comma-separated list of *, ?, N, N-M with an optional /step, with
// month and weekday names; or a descriptor (@yearly, @annually, @monthly,
// @weekly, @daily, @midnight, @hourly, @every <duration>); optionally after
// TZ=<zone> or CRON_TZ=<zone>. Seconds are always 0.
package cron

import (
	"time"

	robfig "github.com/robfig/cron/v3"

	// Schedules name zones of the tz database; embed it so that they do
	// not depend on the host's /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Schedule is a parsed schedule.
type Schedule struct{ s robfig.Schedule }

// Parse parses a schedule; its errors are the ones the API server returns
// for an invalid spec.schedule.
func Parse(spec string) (*Schedule, error) {
	s, err := robfig.ParseStandard(spec)
	if err != nil {
		return nil, err
	}
	return &Schedule{s: s}, nil
}

// Next returns the first time after `after` at which s fires, in the zone
// of `after`, computed in the schedule's zone (a schedule without TZ= is
// read in the zone of `after`, as robfig/cron reads time.Local); the zero
// time if s never fires in the next five years (say "0 0 30 2 *"). A
// wall-clock time a spring-forward skips does not fire that day, and one a
// fall-back repeats fires once per offset.
func (s *Schedule) Next(after time.Time) time.Time { return s.s.Next(after) }
