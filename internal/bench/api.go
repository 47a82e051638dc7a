package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// APIConfig sizes the API latency benchmark.
type APIConfig struct {
	Clients  int
	Duration time.Duration
	ListSize int
}

// API measures request latency with Clients concurrent clients against a
// `wharf server` child process (API only, so that controllers add no load):
// each client creates, gets and lists pods in a loop; a watcher measures the
// delay from a create's response to its ADDED event.
func API(ctx context.Context, env Env, out io.Writer, cfg APIConfig) error {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "api"), "--disable-controllers")
	if err != nil {
		return err
	}
	defer srv.Stop()
	c := srv.Client
	for _, ns := range []string{"bench", "bench-list"} {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "api: preloading %d pods to list...\n", cfg.ListSize)
	if err := parallel(cfg.ListSize, 16, func(i int) error {
		_, err := c.CoreV1().Pods("bench-list").Create(ctx, benchPod(fmt.Sprintf("l-%d", i), "list"), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}

	var created sync.Map // name -> time the create returned
	var create, get, list, watchDelay Latencies
	w, err := c.CoreV1().Pods("bench").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer w.Stop()
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added {
				continue
			}
			now := time.Now()
			name := ev.Object.(*corev1.Pod).Name
			// The event may beat the create's response: wait for it briefly.
			for i := 0; i < 1000; i++ {
				if t, ok := created.Load(name); ok {
					watchDelay.Add(max(0, now.Sub(t.(time.Time))))
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}()

	fmt.Fprintf(out, "api: %d clients for %s...\n", cfg.Clients, cfg.Duration)
	before, err := scrapeLatency(ctx, c)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(cfg.Duration)
	var errs atomic.Int64
	var wg sync.WaitGroup
	for cl := 0; cl < cfg.Clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				name := fmt.Sprintf("c%d-%d", cl, i)
				t0 := time.Now()
				if _, err := c.CoreV1().Pods("bench").Create(ctx, benchPod(name, "bench"), metav1.CreateOptions{}); err != nil {
					errs.Add(1)
					continue
				}
				t1 := time.Now()
				created.Store(name, t1)
				create.Add(t1.Sub(t0))
				if _, err := c.CoreV1().Pods("bench").Get(ctx, name, metav1.GetOptions{}); err != nil {
					errs.Add(1)
				}
				get.Add(time.Since(t1))
				if i%10 == 0 {
					t2 := time.Now()
					l, err := c.CoreV1().Pods("bench-list").List(ctx, metav1.ListOptions{})
					if err != nil || len(l.Items) != cfg.ListSize {
						errs.Add(1)
					}
					list.Add(time.Since(t2))
				}
			}
		}(cl)
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let the last events arrive
	after, err := scrapeLatency(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "api: as the clients saw it (their own CPU time included; client and server share the machine):")
	fmt.Fprintf(out, "api:   create            %s\n", create.Summary())
	fmt.Fprintf(out, "api:   get               %s\n", get.Summary())
	fmt.Fprintf(out, "api:   list %d pods    %s\n", cfg.ListSize, list.Summary())
	fmt.Fprintf(out, "api:   watch event delay %s\n", watchDelay.Summary())
	fmt.Fprintln(out, "api: as the server measured it (apiserver_request_duration_seconds, the Kubernetes SLO's measure):")
	fmt.Fprintf(out, "api:   create            %s\n", serverLine(before, after, "create pods"))
	fmt.Fprintf(out, "api:   get               %s\n", serverLine(before, after, "get pods"))
	fmt.Fprintf(out, "api:   list              %s\n", serverLine(before, after, "list pods"))
	if n := errs.Load(); n > 0 {
		fmt.Fprintf(out, "api: %d requests failed\n", n)
	}
	return nil
}
