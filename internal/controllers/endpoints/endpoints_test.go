package endpoints

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func pod(name, ip string, ready bool, ports ...corev1.ContainerPort) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-" + "name"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

func TestSubsets(t *testing.T) {
	svc := func(tp intstr.IntOrString) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: tp}}}}
	}
	web := corev1.ContainerPort{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}
	alt := corev1.ContainerPort{Name: "web", ContainerPort: 9090, Protocol: corev1.ProtocolTCP}
	deleting := pod("gone", "10.0.0.9", true)
	deleting.DeletionTimestamp = &metav1.Time{}
	cases := []struct {
		name string
		svc  *corev1.Service
		pods []*corev1.Pod
		want map[int32][2][]string // port -> ready, not ready IPs
	}{
		{"numeric target port, ready and not ready", svc(intstr.FromInt32(8080)),
			[]*corev1.Pod{pod("a", "10.0.0.2", true), pod("b", "10.0.0.1", false), pod("c", "", true)},
			map[int32][2][]string{8080: {{"10.0.0.2"}, {"10.0.0.1"}}}},
		{"no target port means the service port", svc(intstr.IntOrString{}),
			[]*corev1.Pod{pod("a", "10.0.0.2", true)},
			map[int32][2][]string{80: {{"10.0.0.2"}, nil}}},
		{"named target port resolves per pod", svc(intstr.FromString("web")),
			[]*corev1.Pod{pod("a", "10.0.0.2", true, web), pod("b", "10.0.0.3", true, alt), pod("c", "10.0.0.4", true)},
			map[int32][2][]string{8080: {{"10.0.0.2"}, nil}, 9090: {{"10.0.0.3"}, nil}}},
		{"terminating pods are left out", svc(intstr.FromInt32(8080)),
			[]*corev1.Pod{deleting},
			map[int32][2][]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[int32][2][]string{}
			for _, ss := range Subsets(tc.svc, tc.pods) {
				var ready, notReady []string
				for _, a := range ss.Addresses {
					ready = append(ready, a.IP)
				}
				for _, a := range ss.NotReadyAddresses {
					notReady = append(notReady, a.IP)
				}
				got[ss.Ports[0].Port] = [2][]string{ready, notReady}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("subsets (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSliceMirrorsSubsets(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "svc-uid"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}},
	}
	s := Slice(svc, []*corev1.Pod{pod("a", "10.0.0.2", true), pod("b", "10.0.0.3", false)})
	if s.Name != "web" || s.Labels["kubernetes.io/service-name"] != "web" || s.OwnerReferences[0].UID != "svc-uid" {
		t.Fatalf("slice identity: %+v", s.ObjectMeta)
	}
	if len(s.Ports) != 1 || *s.Ports[0].Port != 8080 {
		t.Fatalf("slice ports %+v", s.Ports)
	}
	got := map[string]bool{}
	for _, e := range s.Endpoints {
		got[e.Addresses[0]] = *e.Conditions.Ready
	}
	if diff := cmp.Diff(map[string]bool{"10.0.0.2": true, "10.0.0.3": false}, got); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	_ = ptr.To(1)
}

// TestSliceHostnames: a pod naming the service as its subdomain carries its
// hostname into the slice (its DNS name); other pods do not.
func TestSliceHostnames(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 5432, Protocol: corev1.ProtocolTCP}}},
	}
	named := pod("db-0", "10.0.0.2", true)
	named.Spec.Hostname, named.Spec.Subdomain = "db-0", "db"
	other := pod("x", "10.0.0.3", true)
	other.Spec.Hostname, other.Spec.Subdomain = "x", "elsewhere"
	got := map[string]string{}
	for _, e := range Slice(svc, []*corev1.Pod{named, other, pod("plain", "10.0.0.4", true)}).Endpoints {
		got[e.Addresses[0]] = ptr.Deref(e.Hostname, "")
	}
	if diff := cmp.Diff(map[string]string{"10.0.0.2": "db-0", "10.0.0.3": "", "10.0.0.4": ""}, got); diff != "" {
		t.Errorf("hostnames (-want +got):\n%s", diff)
	}
}
