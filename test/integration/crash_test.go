//go:build integration

package integration

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"wharf.dev/wharf/internal/testserver"
)

// TestKill9KeepsAcknowledgedWrites kills the server with SIGKILL while
// clients write; after a restart every write that got a 2xx is there, and a
// watch that was open resumes from its last resourceVersion without a gap.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	dataDir, listen := t.TempDir()+"/server", freePort(t)
	srv := startServer(t, dataDir, listen)
	client := srv.client()

	// A watch that survives the restart: it resumes from the last
	// resourceVersion it saw, which the restarted server must still serve.
	list, err := client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var seenMu sync.Mutex
	seen := map[string]bool{}
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, &cache.ListWatch{
		WatchFunc: func(o metav1.ListOptions) (watch.Interface, error) {
			return srv.client().CoreV1().ConfigMaps("default").Watch(ctx, o)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Stop()
	go func() {
		for ev := range rw.ResultChan() {
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Added {
				seenMu.Lock()
				seen[cm.Name] = true
				seenMu.Unlock()
			}
		}
	}()

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", w, i)
				_, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": fmt.Sprint(i)},
				}, metav1.CreateOptions{})
				if err == nil {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}(w)
	}
	// Kill it under load, once enough writes were acknowledged to make
	// the check below mean something; the writers are still going.
	testserver.WaitFor(t, "200 writes acknowledged before the kill", 60*time.Second, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200, fmt.Errorf("%d acknowledged", len(acked))
	})
	srv.kill()
	close(stop)
	wg.Wait()

	srv = startServer(t, dataDir, listen)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(dataDir + ".log")
			t.Logf("server log:\n%s", out)
		}
	})
	client = srv.client()
	for _, name := range acked {
		if _, err := client.CoreV1().ConfigMaps("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("acknowledged write %s lost: %v", name, err)
		}
	}
	// New writes after the restart reach the resumed watch too.
	if _, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "after-restart"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{}, acked...), "after-restart")
	testserver.WaitFor(t, "the resumed watch to see every acknowledged write", 60*time.Second, func() (bool, error) {
		seenMu.Lock()
		defer seenMu.Unlock()
		missing := 0
		for _, n := range want {
			if !seen[n] {
				missing++
			}
		}
		return missing == 0, fmt.Errorf("missing %d of %d objects", missing, len(want))
	})
	t.Logf("%d acknowledged writes survived kill -9; the watch saw all of them", len(acked))
	var _ kubernetes.Interface = client
}
