package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Annotate sets an annotation of the node, where the agent publishes
// what its peers and the server read (where it hears heartbeats, its
// ingress ports), retrying until it is written or ctx ends: the node may
// not be registered yet.
func Annotate(ctx context.Context, client kubernetes.Interface, node, key, value string, log *slog.Logger) {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}})
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		_, err := client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			log.Info("node annotated", "annotation", key, "value", value)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
