package serviceaccount

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testwait"
)

func ns(name string, terminating bool) *v1.Namespace {
	n := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1.NamespaceStatus{Phase: v1.NamespaceActive}}
	if terminating {
		n.DeletionTimestamp = ptr.To(metav1.Now())
		n.Status.Phase = v1.NamespaceTerminating
	}
	return n
}

func sa(namespace, name string) *v1.ServiceAccount {
	return &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: "existing"}}
}

// accounts lists service accounts as "ns/name".
func accounts(t *testing.T, client *fake.Clientset) []string {
	t.Helper()
	l, err := client.CoreV1().ServiceAccounts("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range l.Items {
		out = append(out, a.Namespace+"/"+a.Name)
	}
	sort.Strings(out)
	return out
}

func TestServiceAccounts(t *testing.T) {
	tests := []struct {
		name    string
		objects []runtime.Object
		// deleteAfterStart deletes this service account ("ns/name") once the wanted state was reached.
		deleteAfterStart *v1.ServiceAccount
		want             []string
		wantCreates      int
	}{
		{
			name:        "active namespaces get default",
			objects:     []runtime.Object{ns("a", false), ns("b", false)},
			want:        []string{"a/default", "b/default"},
			wantCreates: 2,
		},
		{
			name:        "terminating namespace gets none, existing one is kept",
			objects:     []runtime.Object{ns("gone", true), ns("has", false), sa("has", "default"), ns("a", false)},
			want:        []string{"a/default", "has/default"},
			wantCreates: 1,
		},
		{
			name:             "deleted default is recreated",
			objects:          []runtime.Object{ns("a", false)},
			deleteAfterStart: sa("a", "default"),
			want:             []string{"a/default"},
			wantCreates:      2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			logger := slog.New(slog.NewTextHandler(t.Output(), nil))
			factory := informers.NewSharedInformerFactory(client, 0)
			c := New(logger, client, factory)
			ctx, cancel := context.WithCancel(context.Background())
			factory.Start(ctx.Done())
			var wg sync.WaitGroup
			wg.Go(func() { c.Run(ctx, 2) })
			t.Cleanup(func() { cancel(); wg.Wait(); factory.Shutdown() })

			creates := func() int {
				n := 0
				for _, a := range client.Actions() {
					if a.GetVerb() == "create" && a.GetResource().Resource == "serviceaccounts" {
						n++
					}
				}
				return n
			}
			wait := func() {
				testwait.For(t, "service accounts", func() (bool, string) {
					diff := cmp.Diff(tt.want, accounts(t, client))
					return diff == "" && creates() == tt.wantCreates, diff
				})
			}
			if tt.deleteAfterStart != nil {
				testwait.For(t, "first creation", func() (bool, string) { return creates() == 1, "" })
				if err := client.CoreV1().ServiceAccounts(tt.deleteAfterStart.Namespace).Delete(ctx, tt.deleteAfterStart.Name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			wait()
		})
	}
}
