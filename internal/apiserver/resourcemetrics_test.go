package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

type staticMetrics struct {
	nodes []metricsv1beta1.NodeMetrics
	pods  []metricsv1beta1.PodMetrics
}

func (s staticMetrics) NodeMetrics(context.Context) ([]metricsv1beta1.NodeMetrics, error) {
	return s.nodes, nil
}

func (s staticMetrics) PodMetrics(_ context.Context, ns string) ([]metricsv1beta1.PodMetrics, error) {
	var out []metricsv1beta1.PodMetrics
	for _, p := range s.pods {
		if ns == "" || p.Namespace == ns {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestResourceMetrics(t *testing.T) {
	usage := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	src := staticMetrics{
		nodes: []metricsv1beta1.NodeMetrics{{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"}}, Usage: usage}},
		pods: []metricsv1beta1.PodMetrics{
			{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{"app": "web"}}, Containers: []metricsv1beta1.ContainerMetrics{{Name: "app", Usage: usage}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "default", Labels: map[string]string{"app": "db"}}, Containers: []metricsv1beta1.ContainerMetrics{{Name: "db", Usage: usage}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "dns", Namespace: "kube-system"}, Containers: []metricsv1beta1.ContainerMetrics{{Name: "dns", Usage: usage}}},
		},
	}
	serve := func(src ResourceMetricsSource) *httptest.Server {
		s := New(Config{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: serviceRegistry(t), ResourceMetrics: src,
			Authenticate: func(*http.Request) (*User, bool) { return &User{Name: "test"}, true },
		})
		hs := httptest.NewServer(s.Handler())
		t.Cleanup(hs.Close)
		return hs
	}
	hs := serve(src)
	items := func(body []byte) []string {
		var l struct {
			Kind  string
			Items []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		var names []string
		for _, it := range l.Items {
			names = append(names, it.Metadata.Namespace+"/"+it.Metadata.Name)
		}
		return names
	}
	const base = "/apis/metrics.k8s.io/v1beta1"
	tests := []struct {
		path  string
		code  int
		names []string
	}{
		{base + "/nodes", 200, []string{"/n1"}},
		{base + "/nodes?labelSelector=zone%3Db", 200, nil},
		{base + "/pods", 200, []string{"default/web-1", "default/db-1", "kube-system/dns"}},
		{base + "/namespaces/default/pods?labelSelector=app%3Dweb", 200, []string{"default/web-1"}},
		{base + "/namespaces/kube-system/pods", 200, []string{"kube-system/dns"}},
		{base + "/namespaces/default/pods/db-1", 200, nil},
		{base + "/namespaces/default/pods/gone", 404, nil},
		{base + "/nodes/n2", 404, nil},
		{base + "/pods?watch=true", 405, nil},
		{base + "/pods?labelSelector=a%3D%3D%3Db", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := fetch(t, hs, tt.path)
			if r.code != tt.code {
				t.Fatalf("code %d, want %d: %s", r.code, tt.code, r.body)
			}
			if tt.code == 200 && tt.names != nil {
				got := items(r.body)
				if len(got) != len(tt.names) {
					t.Fatalf("items %v, want %v", got, tt.names)
				}
				for i := range got {
					if got[i] != tt.names[i] {
						t.Errorf("items %v, want %v", got, tt.names)
					}
				}
			}
		})
	}
	if r := fetch(t, hs, base+"/namespaces/default/pods/db-1"); !json.Valid(r.body) || !strings.Contains(string(r.body), `"kind":"PodMetrics"`) {
		t.Errorf("get: %s", r.body)
	}
	// Discovery lists the group's two resources, get and list only.
	r := fetch(t, hs, base)
	for _, want := range []string{`"name":"nodes"`, `"kind":"NodeMetrics"`, `"kind":"PodMetrics"`, `"verbs":["get","list"]`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("discovery lacks %s: %s", want, r.body)
		}
	}
	// Without a source: unavailable, as an APIService without endpoints.
	if r := fetch(t, serve(nil), base+"/nodes"); r.code != http.StatusServiceUnavailable {
		t.Errorf("no source: %d %s", r.code, r.body)
	}
}
