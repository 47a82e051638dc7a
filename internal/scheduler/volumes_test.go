package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func withClaim(name string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name},
		}})
	}
}

func class(name, provisioner string, mode storagev1.VolumeBindingMode, topology ...corev1.TopologySelectorTerm) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner,
		VolumeBindingMode: &mode, AllowedTopologies: topology}
}

func claim(name, class, volume string, annotations ...string) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), Annotations: map[string]string{}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class, VolumeName: volume,
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	if volume != "" {
		c.Annotations["pv.kubernetes.io/bind-completed"] = "yes"
		c.Status.Phase = corev1.ClaimBound
	}
	for i := 0; i+1 < len(annotations); i += 2 {
		c.Annotations[annotations[i]] = annotations[i+1]
	}
	return c
}

// pvOn is an Available volume of class pinned to node (no pin when "").
func pvOn(name, class, node string) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName: class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/data/" + name}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	if node != "" {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
			term(expr("kubernetes.io/hostname", corev1.NodeSelectorOpIn, node)),
		}}}
	}
	return pv
}

func hostNode(name string, opts ...nodeOpt) *corev1.Node {
	return makeNode(name, "4", "8Gi", 110, append([]nodeOpt{withLabel("kubernetes.io/hostname", name)}, opts...)...)
}

// TestVolumeBinding runs the scheduler over pods with claims: where they
// land, why they cannot, and what the claim and volume are told.
func TestVolumeBinding(t *testing.T) {
	wffc, immediate := storagev1.VolumeBindingWaitForFirstConsumer, storagev1.VolumeBindingImmediate
	nodes := []*corev1.Node{hostNode("n1", withLabel("zone", "a")), hostNode("n2", withLabel("zone", "b")), hostNode("n3", withLabel("zone", "b"))}
	tests := []struct {
		name string
		objs []runtime.Object
		// wantNodes: the pod is bound to one of them; none: unschedulable
		// with wantMessage.
		wantNodes   []string
		wantMessage string
		// wantSelected: the claim "data" gets this selected-node ("*": the pod's node).
		wantSelected string
		// wantClaimRef: this volume gets claimRef default/data.
		wantClaimRef string
	}{
		{
			name:        "missing claim",
			wantMessage: `0/3 nodes are available: persistentvolumeclaim "data" not found.`,
		},
		{
			name:        "claim being deleted",
			objs:        []runtime.Object{deleting(claim("data", "local", "pv1")), pvOn("pv1", "local", "n2")},
			wantMessage: `0/3 nodes are available: persistentvolumeclaim "data" is being deleted.`,
		},
		{
			name:        "unbound Immediate claim",
			objs:        []runtime.Object{class("fast", "wharf.dev/local", immediate), claim("data", "fast", "")},
			wantMessage: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
		},
		{
			name:        "claim of a class that does not exist counts as Immediate",
			objs:        []runtime.Object{claim("data", "nope", "")},
			wantMessage: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
		},
		{
			name:      "bound volume pins the node",
			objs:      []runtime.Object{claim("data", "local", "pv1"), pvOn("pv1", "local", "n2")},
			wantNodes: []string{"n2"},
		},
		{
			name:        "bound volume on a node the pod cannot use",
			objs:        []runtime.Object{claim("data", "local", "pv1"), pvOn("pv1", "local", "n9")},
			wantMessage: "0/3 nodes are available: 3 node(s) had volume node affinity conflict.",
		},
		{
			name:        "bound to a volume that does not exist",
			objs:        []runtime.Object{claim("data", "local", "gone")},
			wantMessage: "0/3 nodes are available: 3 node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s).",
		},
		{
			name:         "WaitForFirstConsumer with a provisioner: any node, selected-node written",
			objs:         []runtime.Object{class("local", "wharf.dev/local", wffc), claim("data", "local", "")},
			wantNodes:    []string{"n1", "n2", "n3"},
			wantSelected: "*",
		},
		{
			name: "allowedTopologies limit where it is provisioned",
			objs: []runtime.Object{class("local", "wharf.dev/local", wffc, corev1.TopologySelectorTerm{
				MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{{Key: "zone", Values: []string{"a"}}},
			}), claim("data", "local", "")},
			wantNodes:    []string{"n1"},
			wantSelected: "n1",
		},
		{
			name:         "selected-node already set: only that node",
			objs:         []runtime.Object{class("local", "wharf.dev/local", wffc), claim("data", "local", "", "volume.kubernetes.io/selected-node", "n3")},
			wantNodes:    []string{"n3"},
			wantSelected: "n3",
		},
		{
			name:         "WaitForFirstConsumer without a provisioner: the static volume's node",
			objs:         []runtime.Object{class("manual", "kubernetes.io/no-provisioner", wffc), claim("data", "manual", ""), pvOn("pv1", "manual", "n3")},
			wantNodes:    []string{"n3"},
			wantClaimRef: "pv1",
		},
		{
			name:        "WaitForFirstConsumer without a provisioner nor a volume",
			objs:        []runtime.Object{class("manual", "kubernetes.io/no-provisioner", wffc), claim("data", "manual", "")},
			wantMessage: "0/3 nodes are available: 3 node(s) didn't find available persistent volumes to bind.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := makePod("p", withClaim("data"))
			h := startHarness(t, nil, append(objects(nodes, pod), tt.objs...))
			if len(tt.wantNodes) == 0 {
				waitFor(t, "PodScheduled=False", func() bool {
					c := scheduledCondition(h.pod(t, "p"))
					return c != nil && c.Status == corev1.ConditionFalse
				})
				if got := scheduledCondition(h.pod(t, "p")).Message; got != tt.wantMessage {
					t.Errorf("message:\n got %q\nwant %q", got, tt.wantMessage)
				}
				return
			}
			node := h.waitBound(t, "p")["p"]
			if !slices.Contains(tt.wantNodes, node) {
				t.Errorf("bound to %s, want one of %v", node, tt.wantNodes)
			}
			c, err := h.client.CoreV1().PersistentVolumeClaims("default").Get(t.Context(), "data", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantSelected
			if want == "*" {
				want = node
			}
			if got := c.Annotations["volume.kubernetes.io/selected-node"]; got != want {
				t.Errorf("selected-node %q, want %q", got, want)
			}
			if tt.wantClaimRef != "" {
				pv, err := h.client.CoreV1().PersistentVolumes().Get(t.Context(), tt.wantClaimRef, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if cr := pv.Spec.ClaimRef; cr == nil || cr.Name != "data" || cr.UID != "uid-data" {
					t.Errorf("volume claimRef %+v, want default/data", cr)
				}
			}
		})
	}
}

func deleting(c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	now := metav1.Now()
	c.DeletionTimestamp = &now
	c.Finalizers = []string{"kubernetes.io/pvc-protection"}
	return c
}

