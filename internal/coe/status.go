package coe

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// Step names recorded in status.steps, in order.
const (
	stepCredentials  = "credentials"
	stepMasterHosts  = "master hosts"
	stepControlPlane = "control plane ready"
	stepWorkerHosts  = "worker hosts"
	stepNodesReady   = "nodes ready"
)

// setStatus applies mutate to the stored cluster's status and writes it if
// it changed. It reads the cluster afresh each time (and again on a
// conflict), so the sync and the health loop, which write different
// fields, never undo each other's writes.
func (c *Controller) setStatus(ctx context.Context, cl *wharfv1.Cluster, mutate func(*wharfv1.ClusterStatus)) (*wharfv1.Cluster, error) {
	var out *wharfv1.Cluster
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.obj.clusters.get(ctx, cl.Namespace, cl.Name)
		if err != nil {
			return err
		}
		if cur.UID != cl.UID {
			return apierrors.NewNotFound(clustersGVR.GroupResource(), cl.Name)
		}
		next := cur.DeepCopy()
		mutate(&next.Status)
		if equality.Semantic.DeepEqual(cur.Status, next.Status) {
			out = cur
			return nil
		}
		now := c.now()
		next.Status.UpdatedAt = &now
		out, err = c.obj.clusters.updateStatus(ctx, next)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster %s/%s: write status: %w", cl.Namespace, cl.Name, err)
	}
	return out, nil
}

// now is the controller's time at the API's precision (seconds), so that a
// status that round-trips compares equal.
func (c *Controller) now() metav1.Time {
	return metav1.NewTime(c.clock.Now()).Rfc3339Copy()
}

// addStep records a finished provisioning step once.
func addStep(st *wharfv1.ClusterStatus, name string, at metav1.Time) {
	if !slices.ContainsFunc(st.Steps, func(s wharfv1.Step) bool { return s.Name == name }) {
		st.Steps = append(st.Steps, wharfv1.Step{Name: name, At: at})
	}
}

// failStatus sets a failed status: the reason says which step failed and
// why, faults says it per host (or per step when no host is to blame).
func failStatus(st *wharfv1.ClusterStatus, status, step string, faults map[string]string, err error) {
	st.Status = status
	st.StatusReason = fmt.Sprintf("%s: %v", step, err)
	if st.Faults == nil {
		st.Faults = map[string]string{}
	}
	if len(faults) == 0 {
		st.Faults[step] = err.Error()
	}
	maps.Copy(st.Faults, faults)
}

// stepError is a failed step with the hosts to blame.
type stepError struct {
	step   string
	faults map[string]string // host → error
	err    error
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

// failStep wraps err as step's failure.
func failStep(step string, faults map[string]string, err error) error {
	return &stepError{step: step, faults: faults, err: err}
}

// hostErrors turns per-host failures into one error and the faults map.
func hostErrors(errs map[string]error) (map[string]string, error) {
	if len(errs) == 0 {
		return nil, nil
	}
	faults := make(map[string]string, len(errs))
	var all joinedErrors
	for _, name := range slices.Sorted(maps.Keys(errs)) {
		faults[name] = errs[name].Error()
		err := errs[name]
		if !strings.Contains(err.Error(), name) {
			err = fmt.Errorf("host %q: %w", name, err)
		}
		all = append(all, err)
	}
	return faults, all
}

// joinedErrors is errors.Join on one line, fit for a status reason.
type joinedErrors []error

func (j joinedErrors) Error() string {
	msgs := make([]string, len(j))
	for i, err := range j {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joinedErrors) Unwrap() []error { return j }

// setGroupStatus writes a node group's status if mutate changed it, and
// returns the group as stored. g is fresh from the API (or from an
// earlier setGroupStatus): when mutate changes nothing on it, nothing is
// read or written.
func (c *Controller) setGroupStatus(ctx context.Context, g *wharfv1.NodeGroup, mutate func(*wharfv1.NodeGroupStatus)) (*wharfv1.NodeGroup, error) {
	probe := g.Status.DeepCopy()
	mutate(probe)
	if equality.Semantic.DeepEqual(&g.Status, probe) {
		return g, nil
	}
	out := g
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.obj.groups.get(ctx, g.Namespace, g.Name)
		if err != nil {
			return err
		}
		next := cur.DeepCopy()
		mutate(&next.Status)
		if equality.Semantic.DeepEqual(cur.Status, next.Status) {
			out = cur
			return nil
		}
		out, err = c.obj.groups.updateStatus(ctx, next)
		return err
	})
	if apierrors.IsNotFound(err) {
		return g, nil
	}
	if err != nil {
		return g, fmt.Errorf("node group %s/%s: write status: %w", g.Namespace, g.Name, err)
	}
	return out, nil
}
