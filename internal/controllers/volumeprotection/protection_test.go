package volumeprotection

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/testwait"
)

func claim(name string, deleting bool, finalizers ...string) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Finalizers: finalizers}}
	if deleting {
		c.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	}
	return c
}

func volume(name string, deleting bool, phase corev1.PersistentVolumePhase, finalizers ...string) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers}, Status: corev1.PersistentVolumeStatus{Phase: phase}}
	if deleting {
		pv.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	}
	return pv
}

func pod(name, node, claim string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.PodSpec{NodeName: node, Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
		}}}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded},
	}
}

func TestProtection(t *testing.T) {
	tests := []struct {
		name string
		objs []runtime.Object
		// claims and volumes: whether each keeps its finalizer in the end.
		claims, volumes map[string]bool
	}{
		{
			name:   "a new claim gets the finalizer",
			objs:   []runtime.Object{claim("old", false)},
			claims: map[string]bool{"old": true},
		},
		{
			name:   "a deleted claim no pod uses goes",
			objs:   []runtime.Object{claim("free", true, PVCFinalizer, "other")},
			claims: map[string]bool{"free": false},
		},
		{
			name:   "a deleted claim a scheduled pod names is kept, even a finished pod",
			objs:   []runtime.Object{claim("used", true, PVCFinalizer), pod("p", "n1", "used")},
			claims: map[string]bool{"used": true},
		},
		{
			name:   "a pending pod does not keep it",
			objs:   []runtime.Object{claim("pending", true, PVCFinalizer), pod("p", "", "pending")},
			claims: map[string]bool{"pending": false},
		},
		{
			name:    "a new volume gets the finalizer; a deleted Bound one keeps it; a Released one goes",
			objs:    []runtime.Object{volume("new", false, corev1.VolumeAvailable), volume("bound", true, corev1.VolumeBound, PVFinalizer), volume("released", true, corev1.VolumeReleased, PVFinalizer)},
			volumes: map[string]bool{"new": true, "bound": true, "released": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(tt.objs...)
			factory := informers.NewSharedInformerFactory(cs, 0)
			c := New(slog.New(slog.NewTextHandler(t.Output(), nil)), cs, factory)
			ctx, cancel := context.WithCancel(context.Background())
			factory.Start(ctx.Done())
			var wg sync.WaitGroup
			wg.Go(func() { c.Run(ctx, 2) })
			defer func() { cancel(); wg.Wait(); factory.Shutdown() }()
			testwait.For(t, "finalizers", func() (bool, string) {
				for name, want := range tt.claims {
					got, err := cs.CoreV1().PersistentVolumeClaims("ns").Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						return false, err.Error()
					}
					if slices.Contains(got.Finalizers, PVCFinalizer) != want {
						return false, fmt.Sprintf("claim %s finalizers %v", name, got.Finalizers)
					}
				}
				for name, want := range tt.volumes {
					got, err := cs.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
					if err != nil {
						return false, err.Error()
					}
					if slices.Contains(got.Finalizers, PVFinalizer) != want {
						return false, fmt.Sprintf("volume %s finalizers %v", name, got.Finalizers)
					}
				}
				return true, ""
			})
			// Kept ones stay kept: give the controller time to be wrong.
			time.Sleep(100 * time.Millisecond)
			for name, want := range tt.claims {
				got, _ := cs.CoreV1().PersistentVolumeClaims("ns").Get(ctx, name, metav1.GetOptions{})
				if want && !slices.Contains(got.Finalizers, PVCFinalizer) {
					t.Errorf("claim %s lost its finalizer", name)
				}
				if name == "free" && !slices.Contains(got.Finalizers, "other") {
					t.Errorf("claim %s lost another finalizer: %v", name, got.Finalizers)
				}
			}
		})
	}
}
