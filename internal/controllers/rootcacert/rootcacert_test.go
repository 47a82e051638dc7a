package rootcacert

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testwait"
)

const ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

func ns(name string, terminating bool) *v1.Namespace {
	n := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NamespaceStatus{Phase: v1.NamespaceActive}}
	if terminating {
		n.DeletionTimestamp = ptr.To(metav1.Now())
		n.Status.Phase = v1.NamespaceTerminating
	}
	return n
}

func cm(namespace string, data map[string]string) *v1.ConfigMap {
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: Name}, Data: data}
}

// published tells, per namespace, whether it holds the CA as it should.
func published(client *fake.Clientset, namespaces ...string) (bool, string) {
	for _, n := range namespaces {
		got, err := client.CoreV1().ConfigMaps(n).Get(context.Background(), Name, metav1.GetOptions{})
		if err != nil {
			return false, fmt.Sprintf("%s: %v", n, err)
		}
		if len(got.Data) != 1 || got.Data[DataKey] != ca || got.Annotations["kubernetes.io/description"] == "" {
			return false, fmt.Sprintf("%s: %v %v", n, got.Data, got.Annotations)
		}
	}
	return true, ""
}

func TestPublish(t *testing.T) {
	tests := []struct {
		name    string
		objects []runtime.Object
		want    []string // namespaces holding the CA
		absent  []string // namespaces that must not get it
		// then is done once want holds; want must hold again after it.
		then func(ctx context.Context, client *fake.Clientset) error
	}{
		{
			name:    "every active namespace",
			objects: []runtime.Object{ns("a", false), ns("b", false), ns("gone", true)},
			want:    []string{"a", "b"},
			absent:  []string{"gone"},
		},
		{
			name:    "a changed one is put back",
			objects: []runtime.Object{ns("a", false), cm("a", map[string]string{DataKey: "other", "extra": "x"})},
			want:    []string{"a"},
		},
		{
			name:    "a deleted one comes back",
			objects: []runtime.Object{ns("a", false)},
			want:    []string{"a"},
			then: func(ctx context.Context, client *fake.Clientset) error {
				return client.CoreV1().ConfigMaps("a").Delete(ctx, Name, metav1.DeleteOptions{})
			},
		},
		{
			name:    "an edit is undone",
			objects: []runtime.Object{ns("a", false)},
			want:    []string{"a"},
			then: func(ctx context.Context, client *fake.Clientset) error {
				_, err := client.CoreV1().ConfigMaps("a").Update(ctx, cm("a", map[string]string{DataKey: "mine"}), metav1.UpdateOptions{})
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			factory := informers.NewSharedInformerFactory(client, 0)
			c := New(slog.New(slog.NewTextHandler(t.Output(), nil)), client, factory, []byte(ca))
			ctx, cancel := context.WithCancel(context.Background())
			factory.Start(ctx.Done())
			var wg sync.WaitGroup
			wg.Go(func() { c.Run(ctx, 2) })
			t.Cleanup(func() { cancel(); wg.Wait(); factory.Shutdown() })

			testwait.For(t, "CA published", func() (bool, string) { return published(client, tt.want...) })
			if tt.then != nil {
				if err := tt.then(ctx, client); err != nil {
					t.Fatal(err)
				}
				testwait.For(t, "CA published again", func() (bool, string) { return published(client, tt.want...) })
			}
			for _, n := range tt.absent {
				if _, err := client.CoreV1().ConfigMaps(n).Get(ctx, Name, metav1.GetOptions{}); err == nil {
					t.Errorf("terminating namespace %s got the CA", n)
				}
			}
		})
	}
}
