package fakeapi

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

func TestServerBehaviour(t *testing.T) {
	ctx := context.Background()
	one := int32(1)
	tests := []struct {
		name string
		run  func(t *testing.T, cs *fake.Clientset)
	}{
		{"create fills metadata and resets status", func(t *testing.T, cs *fake.Clientset) {
			pod, err := cs.CoreV1().Pods("ns").Create(ctx, &v1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "web-"},
				Status:     v1.PodStatus{Phase: v1.PodRunning},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(pod.Name) != len("web-")+5 || pod.UID == "" || pod.ResourceVersion == "" || pod.CreationTimestamp.IsZero() {
				t.Errorf("metadata not filled: %+v", pod.ObjectMeta)
			}
			if pod.Status.Phase != v1.PodPending {
				t.Errorf("phase = %q, want Pending", pod.Status.Phase)
			}
		}},
		{"stale update conflicts", func(t *testing.T, cs *fake.Clientset) {
			rs, err := cs.AppsV1().ReplicaSets("ns").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"}, Spec: appsv1.ReplicaSetSpec{Replicas: &one}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cs.AppsV1().ReplicaSets("ns").Update(ctx, rs, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err = cs.AppsV1().ReplicaSets("ns").Update(ctx, rs, metav1.UpdateOptions{})
			if !apierrors.IsConflict(err) {
				t.Errorf("second update with the same resourceVersion: err = %v, want Conflict", err)
			}
		}},
		{"generation follows spec, status keeps spec", func(t *testing.T, cs *fake.Clientset) {
			rs, err := cs.AppsV1().ReplicaSets("ns").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs"}, Spec: appsv1.ReplicaSetSpec{Replicas: &one}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rs.Status.Replicas = 5
			rs.Spec.Replicas = new(int32) // ignored by a status update
			rs, err = cs.AppsV1().ReplicaSets("ns").UpdateStatus(ctx, rs, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rs.Generation != 1 || *rs.Spec.Replicas != 1 || rs.Status.Replicas != 5 {
				t.Errorf("after status update: generation %d, replicas %d, status.replicas %d; want 1, 1, 5", rs.Generation, *rs.Spec.Replicas, rs.Status.Replicas)
			}
			two := int32(2)
			rs.Spec.Replicas = &two
			rs.Status.Replicas = 0 // ignored by a main update
			rs, err = cs.AppsV1().ReplicaSets("ns").Update(ctx, rs, metav1.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rs.Generation != 2 || rs.Status.Replicas != 5 {
				t.Errorf("after spec update: generation %d, status.replicas %d; want 2, 5", rs.Generation, rs.Status.Replicas)
			}
		}},
		{"patch with another uid is invalid", func(t *testing.T, cs *fake.Clientset) {
			if _, err := cs.CoreV1().Pods("ns").Create(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err := cs.CoreV1().Pods("ns").Patch(ctx, "p", types.StrategicMergePatchType, []byte(`{"metadata":{"uid":"nope","labels":{"a":"b"}}}`), metav1.PatchOptions{})
			if !apierrors.IsInvalid(err) {
				t.Errorf("err = %v, want Invalid", err)
			}
		}},
		{"graceful pod deletion", func(t *testing.T, cs *fake.Clientset) {
			if _, err := cs.CoreV1().Pods("ns").Create(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cs.CoreV1().Pods("ns").Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			pod, err := cs.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
			if err != nil || pod.DeletionTimestamp == nil {
				t.Fatalf("after delete: %v, deletionTimestamp %v; want it still there, terminating", err, pod.DeletionTimestamp)
			}
			if err := Finalize(cs, "ns", "p"); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after finalize: err = %v, want NotFound", err)
			}
		}},
		{"finalizers hold a deletion until removed", func(t *testing.T, cs *fake.Clientset) {
			if _, err := cs.BatchV1().Jobs("ns").Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", Finalizers: []string{"a", "b"}}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cs.BatchV1().Jobs("ns").Delete(ctx, "j", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			j, err := cs.BatchV1().Jobs("ns").Get(ctx, "j", metav1.GetOptions{})
			if err != nil || j.DeletionTimestamp == nil {
				t.Fatalf("after delete: %v, deletionTimestamp %v; want it there, being deleted", err, j.DeletionTimestamp)
			}
			if _, err := cs.BatchV1().Jobs("ns").Patch(ctx, "j", types.StrategicMergePatchType, []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}}`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.BatchV1().Jobs("ns").Get(ctx, "j", metav1.GetOptions{}); err != nil {
				t.Fatalf("after removing one of two finalizers: %v, want it still there", err)
			}
			if _, err := cs.BatchV1().Jobs("ns").Patch(ctx, "j", types.StrategicMergePatchType, []byte(`{"metadata":{"$deleteFromPrimitiveList/finalizers":["b"]}}`), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.BatchV1().Jobs("ns").Get(ctx, "j", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after removing the last finalizer: err = %v, want NotFound", err)
			}
		}},
		{"a finalized pod with a finalizer waits for it", func(t *testing.T, cs *fake.Clientset) {
			if _, err := cs.CoreV1().Pods("ns").Create(ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Finalizers: []string{"a"}}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := cs.CoreV1().Pods("ns").Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := Finalize(cs, "ns", "p"); err != nil {
				t.Fatal(err)
			}
			pod, err := cs.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{})
			if err != nil || pod.DeletionGracePeriodSeconds == nil || *pod.DeletionGracePeriodSeconds != 0 {
				t.Fatalf("after finalize: %v, grace %v; want it there with grace 0", err, pod.DeletionGracePeriodSeconds)
			}
			pod.Finalizers = nil
			if _, err := cs.CoreV1().Pods("ns").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CoreV1().Pods("ns").Get(ctx, "p", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("after removing the finalizer: err = %v, want NotFound", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, New(Options{GracefulPodDeletion: true}))
		})
	}
}
