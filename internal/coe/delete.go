package coe

import (
	"context"
	"fmt"
	"slices"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/wire"
)

// delete removes everything a cluster has, whatever state it is in:
// every host the provider lists for it (not only those the status knows:
// a create may have died between making a host and recording it), its
// registry pull token, credentials and node groups; then the finalizer,
// which lets the Cluster go. A failure leaves DELETE_FAILED with the
// reason and is retried.
func (c *Controller) delete(ctx context.Context, cl *wharfv1.Cluster) error {
	key := cl.Namespace + "/" + cl.Name
	if !slices.Contains(cl.Finalizers, Finalizer) {
		c.forget(cl.UID)
		return nil
	}
	cl, err := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
		if st.Status != wharfv1.StatusDeleteInProgress {
			c.log.Info("deleting cluster", "cluster", key)
		}
		st.Status, st.StatusReason = wharfv1.StatusDeleteInProgress, ""
	})
	if err != nil {
		return err
	}
	if step, faults, err := c.deleteEverything(ctx, cl); err != nil {
		if ctx.Err() != nil {
			return err
		}
		if _, werr := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
			failStatus(st, wharfv1.StatusDeleteFailed, step, faults, err)
		}); werr != nil {
			c.log.Warn("delete failure not recorded", "cluster", key, "err", werr)
		}
		return fmt.Errorf("cluster %s: %s: %w", key, step, err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.obj.clusters.get(ctx, cl.Namespace, cl.Name)
		if err != nil || cur.UID != cl.UID {
			return err
		}
		cur.Finalizers = slices.DeleteFunc(cur.Finalizers, func(f string) bool { return f == Finalizer })
		_, err = c.obj.clusters.update(ctx, cur)
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s: remove finalizer: %w", key, err)
	}
	c.forget(cl.UID)
	c.log.Info("cluster deleted", "cluster", key)
	return nil
}

// deleteEverything removes the cluster's hosts and objects; on failure it
// says in which step and, per host, why.
func (c *Controller) deleteEverything(ctx context.Context, cl *wharfv1.Cluster) (string, map[string]string, error) {
	if raw, ok := cl.Annotations[templateAnnotation]; ok {
		e, err := c.envFor(ctx, cl, raw)
		if err != nil {
			return "hosts", nil, err
		}
		hosts, err := e.prov.ListHosts(ctx, e.ref)
		if err != nil {
			return "hosts", nil, fmt.Errorf("list hosts: %w", err)
		}
		var mu sync.Mutex
		errs := map[string]error{}
		var wg sync.WaitGroup
		for _, h := range hosts {
			wg.Go(func() {
				if err := e.prov.DeleteHost(ctx, e.ref, h.Name); err != nil {
					mu.Lock()
					errs[h.Name] = err
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if faults, err := hostErrors(errs); err != nil {
			return "hosts", faults, err
		}
		if left, err := e.prov.ListHosts(ctx, e.ref); err != nil || len(left) > 0 {
			if err == nil {
				err = fmt.Errorf("%d hosts still listed after deletion", len(left))
			}
			return "hosts", nil, err
		}
	}
	secrets := c.cfg.Kube.CoreV1().Secrets
	if err := ignoreNotFound(secrets(wire.NodeTokenNamespace).Delete(ctx, pullTokenName(cl.UID), metav1.DeleteOptions{})); err != nil {
		return "pull token", nil, err
	}
	// The credentials and default groups are the Cluster's and would go
	// with it by garbage collection; removing them here leaves nothing
	// behind even where no collector runs, and takes user groups too.
	if s, err := secrets(cl.Namespace).Get(ctx, credentialsName(cl.Name), metav1.GetOptions{}); err == nil && metav1.IsControlledBy(s, cl) {
		if err := ignoreNotFound(secrets(cl.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(s.UID))})); err != nil {
			return "credentials", nil, err
		}
	} else if err := ignoreNotFound(err); err != nil {
		return "credentials", nil, err
	}
	groups, err := c.groupsOf(ctx, cl)
	if err != nil {
		return "node groups", nil, err
	}
	for _, g := range groups {
		if err := ignoreNotFound(c.obj.groups.delete(ctx, g.Namespace, g.Name, g.UID)); err != nil {
			return "node groups", nil, fmt.Errorf("node group %s: %w", g.Name, err)
		}
	}
	return "", nil, nil
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
