package coe

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// readyzTimeout bounds one /readyz request of the health loop; while a
// create waits, attempts are shorter so a connection that hangs (a host
// whose network is not up yet) does not hold up the next one.
const (
	readyzTimeout     = 2 * time.Second
	readyzWaitTimeout = time.Second
)

// waitAPI polls the cluster's /readyz until it answers. Readiness cannot
// be watched; the first retries come quickly because a server starts in
// well under a second, and the interval stays short so that a create
// never waits long on an idle timer.
func (c *Controller) waitAPI(ctx context.Context, kube kubernetes.Interface, address string) error {
	delay := 10 * time.Millisecond
	for {
		err := readyz(ctx, kube, readyzWaitTimeout)
		if err == nil {
			return nil
		}
		if permanentAPIError(err) {
			return fmt.Errorf("API at %s is not this cluster's: %w", address, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("API at %s not ready (last answer: %v): %w", address, err, context.Cause(ctx))
		case <-c.clock.After(delay):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

func readyz(ctx context.Context, kube kubernetes.Interface, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}

// waitNodes watches the cluster's nodes until each of names is Ready, and
// returns them. A watch, not polling: the create benchmark counts every
// millisecond between a node's Ready and CREATE_COMPLETE.
func waitNodes(ctx context.Context, kube kubernetes.Interface, names []string) (map[string]*corev1.Node, error) {
	if len(names) == 0 {
		return map[string]*corev1.Node{}, nil
	}
	var mu sync.Mutex // the conditions run on the watch's goroutine
	seen := map[string]*corev1.Node{}
	done := func() bool {
		for _, n := range names {
			if node := seen[n]; node == nil || !nodeReady(node) {
				return false
			}
		}
		return true
	}
	lw := cache.NewListWatchFromClient(kube.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{},
		func(store cache.Store) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, obj := range store.List() {
				if n, ok := obj.(*corev1.Node); ok && slices.Contains(names, n.Name) {
					seen[n.Name] = n
				}
			}
			return done(), nil
		},
		func(ev watch.Event) (bool, error) {
			n, ok := ev.Object.(*corev1.Node)
			if !ok || !slices.Contains(names, n.Name) {
				return false, nil
			}
			mu.Lock()
			defer mu.Unlock()
			if ev.Type == watch.Deleted {
				delete(seen, n.Name)
			} else {
				seen[n.Name] = n
			}
			return done(), nil
		})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return nil, &nodesError{reasons: notReady(names, seen), err: err}
	}
	return seen, nil
}

// nodesError says which nodes are not Ready and why.
type nodesError struct {
	reasons map[string]string
	err     error
}

func (e *nodesError) Error() string {
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(e.reasons)) {
		parts = append(parts, n+" "+e.reasons[n])
	}
	return fmt.Sprintf("nodes not Ready (%s): %v", strings.Join(parts, "; "), e.err)
}

func (e *nodesError) Unwrap() error { return e.err }

// notReady maps each of names that is not Ready to why.
func notReady(names []string, nodes map[string]*corev1.Node) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		if r := nodeReason(nodes[n]); r != readyReason {
			out[n] = r
		}
	}
	return out
}
