package apiserver_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/testserver"
)

// BenchmarkCreateNodePortService creates NodePort services (a cluster IP
// and a node port each, reserved in etcd) one at a time and from 8
// clients at once, on a server whose etcd fsyncs; each run deletes its
// services, so keep -benchtime under the node port range (2768).
//
//	go test -run XXX -bench CreateNodePortService -benchtime 500x ./internal/apiserver/
func BenchmarkCreateNodePortService(b *testing.B) {
	s := testserver.Start(b, func(o *controlplane.Options) { o.UnsafeNoFsync = false; o.DisableControllers = true })
	svcs := s.Client.CoreV1().Services("default")
	var n atomic.Int64
	create := func(b *testing.B) {
		i := n.Add(1)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i)},
			Spec: corev1.ServiceSpec{
				Type:  corev1.ServiceTypeNodePort,
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}},
			},
		}
		if _, err := svcs.Create(b.Context(), svc, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	}
	clean := func(b *testing.B) {
		b.StopTimer()
		defer b.StartTimer()
		list, err := svcs.List(b.Context(), metav1.ListOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, svc := range list.Items {
			if svc.Name != "kubernetes" {
				if err := svcs.Delete(b.Context(), svc.Name, metav1.DeleteOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			create(b)
		}
		clean(b)
	})
	b.Run("parallel-8", func(b *testing.B) {
		b.SetParallelism(4) // 2 cores × 4
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				create(b)
			}
		})
		clean(b)
	})
}
