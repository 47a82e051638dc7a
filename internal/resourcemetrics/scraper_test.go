package resourcemetrics

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"wharf.dev/wharf/internal/agent/stats"
)

// agents starts n fake agents, each with pods pods of one container, and
// returns the listers of their nodes and pods and a transport to them.
func agents(t testing.TB, n, pods int) (corelisters.NodeLister, corelisters.PodLister, http.RoundTripper) {
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	podIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	var transport http.RoundTripper
	for i := range n {
		node := fmt.Sprintf("node-%d", i)
		sum := stats.Summary{Node: stats.NodeStats{NodeName: node, CPU: cpu(uint64(1e9 + i)), Memory: mem(uint64(1 << 30))}}
		for p := range pods {
			name, uid := fmt.Sprintf("%s-pod-%d", node, p), fmt.Sprintf("uid-%d-%d", i, p)
			ps := stats.PodStats{PodRef: stats.PodReference{Name: name, Namespace: "default", UID: uid},
				Containers: []stats.ContainerStats{{Name: "app", CPU: cpu(uint64(1e8 + p)), Memory: mem(uint64(64 << 20))}}}
			ps.Sum()
			sum.Pods = append(sum.Pods, ps)
			podIdx.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid), Labels: map[string]string{"app": "x"}}})
		}
		body, err := json.Marshal(sum)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != summaryPath {
				http.NotFound(w, r)
				return
			}
			w.Write(body)
		}))
		t.Cleanup(srv.Close)
		transport = srv.Client().Transport
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"zone": "a"}}, Status: corev1.NodeStatus{
			Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(p)}},
		}})
	}
	// httptest servers each trust their own certificate: one transport
	// that trusts any of them stands in for the cluster CA's.
	if tr, ok := transport.(*http.Transport); ok {
		tr = tr.Clone()
		tr.TLSClientConfig.InsecureSkipVerify = true
		transport = tr
	}
	// A node without an agent port (a simulated node) is not asked.
	nodes.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "portless"}})
	return corelisters.NewNodeLister(nodes), corelisters.NewPodLister(podIdx), transport
}

func cpu(nanocores uint64) *stats.CPUStats {
	return &stats.CPUStats{Time: metav1.NewTime(time.Unix(1000, 0)), Window: &metav1.Duration{Duration: 10 * time.Second}, UsageNanoCores: &nanocores}
}

func mem(ws uint64) *stats.MemoryStats {
	return &stats.MemoryStats{Time: metav1.NewTime(time.Unix(1000, 0)), WorkingSetBytes: &ws}
}

func TestScraper(t *testing.T) {
	nodes, pods, tr := agents(t, 2, 3)
	s := New(slog.New(slog.DiscardHandler), tr)
	s.SetListers(nodes, pods)
	ctx := context.Background()
	nm, err := s.NodeMetrics(ctx) // scrapes on demand: nothing yet
	if err != nil {
		t.Fatal(err)
	}
	if len(nm) != 2 || nm[0].Name != "node-0" || nm[0].Usage.Cpu().MilliValue() != 1000 || nm[0].Labels["zone"] != "a" || nm[0].Window.Duration != 10*time.Second {
		t.Fatalf("node metrics: %+v", nm)
	}
	pm, err := s.PodMetrics(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(pm) != 6 || pm[0].Labels["app"] != "x" || pm[0].Containers[0].Usage.Memory().Value() != 64<<20 {
		t.Fatalf("pod metrics: %+v", pm)
	}
	if pm, _ := s.PodMetrics(ctx, "other"); len(pm) != 0 {
		t.Errorf("namespace other: %d pods", len(pm))
	}
	// A pod recreated under the same name (new UID) has no figures yet.
	p, _ := pods.Pods("default").Get("node-0-pod-0")
	p.UID = "new"
	if pm, _ := s.PodMetrics(ctx, "default"); len(pm) != 5 {
		t.Errorf("after the pod's UID changed: %d pods, want 5", len(pm))
	}
}

// BenchmarkScrape is one scrape of 10 agents of 110 pods over TLS on
// loopback, and the conversion of what it read into PodMetrics.
func BenchmarkScrape(b *testing.B) {
	nodes, pods, tr := agents(b, 10, 110)
	s := New(slog.New(slog.DiscardHandler), tr)
	s.SetListers(nodes, pods)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.Scrape(ctx)
		if pm, _ := s.PodMetrics(ctx, ""); len(pm) != 1100 {
			b.Fatalf("%d pod metrics", len(pm))
		}
	}
}
