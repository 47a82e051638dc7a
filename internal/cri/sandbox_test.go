package cri

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxRuntime holds sandboxes that can be stopped and removed.
type sandboxRuntime struct {
	fakeRuntime
	mu      sync.Mutex
	ids     []string
	stopped map[string]bool
}

func (r *sandboxRuntime) ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, id := range r.ids {
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{Id: id})
	}
	return resp, nil
}

func (r *sandboxRuntime) StopPodSandbox(_ context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped[req.PodSandboxId] = true
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (r *sandboxRuntime) RemovePodSandbox(_ context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped[req.PodSandboxId] {
		for i, id := range r.ids {
			if id == req.PodSandboxId {
				r.ids = append(r.ids[:i], r.ids[i+1:]...)
				break
			}
		}
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func TestRemoveAllPodSandboxes(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "cri.sock")
	if n, err := RemoveAllPodSandboxes(context.Background(), socket); n != 0 || err != nil {
		t.Fatalf("without a runtime: %d, %v; want 0, nil", n, err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	rt := &sandboxRuntime{ids: []string{"a", "b"}, stopped: map[string]bool{}}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, rt)
	go srv.Serve(ln)
	defer srv.Stop()

	n, err := RemoveAllPodSandboxes(context.Background(), socket)
	if n != 2 || err != nil {
		t.Fatalf("RemoveAllPodSandboxes = %d, %v; want 2, nil", n, err)
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.ids) != 0 {
		t.Errorf("sandboxes left: %v", rt.ids)
	}
}
