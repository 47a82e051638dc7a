package servicealloc

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Held is what a live service holds: its owner identity and keys.
type Held struct {
	Owner Owner
	Keys  []Key
}

// Live lists the services that exist and what they hold. Confirm
// re-reads one service from etcd itself (not a cache): it reports
// whether o still exists and holds k, before a reservation is recreated
// for it.
type Live interface {
	Services(ctx context.Context) ([]Held, error)
	Confirm(ctx context.Context, o Owner, k Key) (bool, error)
}

// Repairer frees leaked reservations and restores missing ones, one pass
// at a time. A reservation no live service holds is freed only when a
// second pass finds it unchanged (same mod revision): in between, the
// service whose write it precedes has had a whole interval to appear.
// Upstream's repair controllers wait for several passes the same way.
type Repairer struct {
	a        *Allocator
	live     Live
	log      *slog.Logger
	ranges   []Range
	suspects map[string]int64 // key path → mod revision seen orphaned last pass
}

// NewRepairer returns a repairer of the given ranges.
func NewRepairer(a *Allocator, live Live, log *slog.Logger, ranges ...Range) *Repairer {
	return &Repairer{a: a, live: live, log: log, ranges: ranges, suspects: map[string]int64{}}
}

// PassResult counts what a pass did.
type PassResult struct {
	Freed, Restored, Conflicts int
}

// Pass runs one repair pass. Reservations are listed before services, so
// a service created in between is seen holding its reservation.
func (r *Repairer) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	var all []Reservation
	for _, rg := range r.ranges {
		l, err := r.a.List(ctx, rg)
		if err != nil {
			return res, err
		}
		all = append(all, l...)
	}
	services, err := r.live.Services(ctx)
	if err != nil {
		return res, err
	}
	// Two services may claim one value only in data written before
	// reservations existed: reported, never resolved by freeing either.
	want := map[string][]Owner{}
	for _, h := range services {
		for _, k := range h.Keys {
			want[k.path()] = append(want[k.path()], h.Owner)
		}
	}
	stored := map[string]bool{}
	suspects := map[string]int64{}
	var errs []error
	for _, rv := range all {
		p := rv.Key.path()
		stored[p] = true
		if slices.ContainsFunc(want[p], func(o Owner) bool { return o.UID == rv.Owner.UID }) {
			if len(want[p]) > 1 {
				res.Conflicts++
				r.log.Error("several services hold one value", "key", rv.Key.String(), "reserved by", rv.Owner.String(), "claimants", len(want[p]))
			}
			continue
		}
		if r.suspects[p] != rv.ModRevision {
			suspects[p] = rv.ModRevision
			continue
		}
		freed, err := r.a.free(ctx, rv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if freed {
			res.Freed++
			r.log.Info("freed a leaked reservation", "key", rv.Key.String(), "owner", rv.Owner.String())
		}
	}
	r.suspects = suspects
	for p, owners := range want {
		if stored[p] {
			continue
		}
		k := keyOf(p)
		for _, o := range owners {
			if ok, err := r.live.Confirm(ctx, o, k); err != nil || !ok {
				if err != nil {
					errs = append(errs, err)
				}
				continue
			}
			created, err := r.a.Reserve(ctx, k, o)
			switch {
			case errors.Is(err, ErrTaken):
				res.Conflicts++
				r.log.Error("several services hold one value", "key", k.String(), "service", o.String(), "err", err)
			case err != nil:
				errs = append(errs, err)
			case created:
				res.Restored++
				r.log.Info("restored a missing reservation", "key", k.String(), "service", o.String())
			}
		}
	}
	return res, errors.Join(errs...)
}

func keyOf(path string) Key {
	r, v, _ := strings.Cut(strings.TrimPrefix(path, Prefix), "/")
	return Key{Range: Range(r), Value: v}
}

// Run repairs every interval until ctx ends, starting at once.
func (r *Repairer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("service allocation repair", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
