package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	wharfclient "wharf.dev/wharf/internal/client/wharf"
)

// defaultWaitTimeout bounds waits that have no deadline of their own
// (updates, deletes): long enough for many hosts, short enough that a
// service whose controller is not running does not hang a script.
const defaultWaitTimeout = 15 * time.Minute

// waitFlags are --wait and --wait-timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "wait "+what)
	cmd.Flags().DurationVar(&w.timeout, "wait-timeout", 0, "give up waiting after this long (default: the cluster's create timeout plus a minute when creating, else 15m)")
}

func (w waitFlags) timeoutOr(d time.Duration) time.Duration {
	if w.timeout > 0 {
		return w.timeout
	}
	return d
}

// progress prints what a cluster goes through while a command waits for
// it: its status changes and each new provisioning step, with the time
// since the command started.
type progress struct {
	out    io.Writer
	start  time.Time
	seen   int // steps printed
	status string
	primed bool
	// skipOld: steps already there when waiting starts belong to an
	// earlier operation (a resize after the creation).
	skipOld bool
	// quiet prints nothing (several deletions at once).
	quiet bool
}

func (p *progress) observe(c *wharfv1.Cluster) {
	steps := c.Status.Steps
	if !p.primed {
		p.primed = true
		if p.skipOld {
			p.seen, p.status = len(steps), c.Status.Status
		}
	}
	if len(steps) < p.seen {
		p.seen = 0 // a new operation started the list again
	}
	// A status that comes with the steps that led to it is printed after them.
	changed := c.Status.Status != p.status && c.Status.Status != ""
	if changed && p.seen == 0 && len(steps) == 0 {
		p.status = c.Status.Status
		p.line(c.Status.Status)
		changed = false
	}
	for _, st := range steps[p.seen:] {
		p.line(st.Name)
	}
	p.seen = len(steps)
	if changed {
		p.status = c.Status.Status
		p.line(c.Status.Status)
	}
}

func (p *progress) line(what string) {
	if !p.quiet {
		fmt.Fprintf(p.out, "  %7s  %s\n", since(p.start), what)
	}
}

// since is the time since start, as the progress lines show it.
func since(start time.Time) string {
	return fmt.Sprintf("%.1fs", time.Since(start).Seconds())
}

// clusterCreated ends a wait for a new cluster.
func clusterCreated(c *wharfv1.Cluster) (bool, error) {
	switch c.Status.Status {
	case wharfv1.StatusCreateComplete:
		return true, nil
	case wharfv1.StatusCreateFailed:
		return false, failure(c.Name, &c.Status)
	}
	return false, nil
}

// clusterUpdated ends a wait for a change of a cluster's spec (generation gen).
func clusterUpdated(gen int64) func(*wharfv1.Cluster) (bool, error) {
	return func(c *wharfv1.Cluster) (bool, error) {
		if c.Status.ObservedGeneration < gen {
			return false, nil
		}
		switch c.Status.Status {
		case wharfv1.StatusUpdateComplete, wharfv1.StatusCreateComplete:
			return true, nil
		case wharfv1.StatusUpdateFailed, wharfv1.StatusCreateFailed:
			return false, failure(c.Name, &c.Status)
		}
		return false, nil
	}
}

// failure is a cluster's failure as the user needs it: status, reason, faults.
func failure(name string, s *wharfv1.ClusterStatus) error {
	msg := fmt.Sprintf("cluster %s %s: %s", name, s.Status, s.StatusReason)
	keys := make([]string, 0, len(s.Faults))
	for k := range s.Faults {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		msg += fmt.Sprintf("\n  %s: %s", k, s.Faults[k])
	}
	return fmt.Errorf("%s", msg)
}

// waitCluster follows a cluster until done says so, printing its progress.
func (s *service) waitCluster(ctx context.Context, name string, timeout time.Duration, p *progress, done func(*wharfv1.Cluster) (bool, error)) error {
	var last *wharfv1.Cluster
	err := waitObject(ctx, s.wharf.Clusters(s.project), &wharfv1.Cluster{}, s.project, name, timeout, false, func(o runtime.Object) (bool, error) {
		last = o.(*wharfv1.Cluster)
		p.observe(last)
		return done(last)
	})
	return waitError(ctx, err, "cluster", name, timeout, statusOf(last))
}

// waitClusterGone follows a deleted cluster until it is gone.
func (s *service) waitClusterGone(ctx context.Context, name string, timeout time.Duration, p *progress) error {
	var last *wharfv1.Cluster
	err := waitObject(ctx, s.wharf.Clusters(s.project), &wharfv1.Cluster{}, s.project, name, timeout, true, func(o runtime.Object) (bool, error) {
		last = o.(*wharfv1.Cluster)
		p.observe(last)
		if last.Status.Status == wharfv1.StatusDeleteFailed {
			return false, failure(name, &last.Status)
		}
		return false, nil
	})
	return waitError(ctx, err, "cluster", name, timeout, statusOf(last))
}

// errWaitTimeout: a wait ran out of time (not the user's Ctrl-C).
var errWaitTimeout = errors.New("timed out")

// waitError explains a wait that failed; status is the object's last.
func waitError(ctx context.Context, err error, kind, name string, timeout time.Duration, status string) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	if errors.Is(err, errWaitTimeout) {
		if status == "" {
			status = "without a status"
		}
		return fmt.Errorf("%s %s: still %s after %s: is the service's cluster controller running? (see its log)", kind, name, status, timeout)
	}
	return err
}

func statusOf(c *wharfv1.Cluster) string {
	if c == nil {
		return ""
	}
	return c.Status.Status
}

// waitObject watches one object until cond holds (or, with gone, until it
// is deleted); cond sees the object at the start and after each change.
func waitObject[L runtime.Object](ctx context.Context, c wharfclient.ListWatcher[L], example runtime.Object, namespace, name string,
	timeout time.Duration, gone bool, cond func(runtime.Object) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return c.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return c.Watch(ctx, opts)
		},
	}
	key := namespace + "/" + name
	precondition := func(store cache.Store) (bool, error) {
		_, exists, err := store.GetByKey(key)
		switch {
		case err != nil:
			return false, err
		case !exists && gone:
			return true, nil
		case !exists:
			return false, fmt.Errorf("%s not found", key)
		}
		return false, nil
	}
	_, err := watchtools.UntilWithSync(ctx, lw, example, precondition, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Deleted:
			if gone {
				return true, nil
			}
			return false, fmt.Errorf("%s was deleted", name)
		case watch.Added, watch.Modified:
			return cond(ev.Object)
		}
		return false, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", errWaitTimeout, err)
	}
	return err
}
