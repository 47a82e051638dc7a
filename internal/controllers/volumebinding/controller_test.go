package volumebinding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"wharf.dev/wharf/internal/testwait"
)

type claimOpt func(*corev1.PersistentVolumeClaim)

func newClaim(name, size string, opts ...claimOpt) *corev1.PersistentVolumeClaim {
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: new(""),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimPending},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func claimClass(name string) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = &name }
}
func noClass(c *corev1.PersistentVolumeClaim) { c.Spec.StorageClassName = nil }
func claimAnnotation(k, v string) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) { metav1.SetMetaDataAnnotation(&c.ObjectMeta, k, v) }
}
func claimVolumeName(pv string) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) { c.Spec.VolumeName = pv }
}
func claimSelector(k, v string) claimOpt {
	return func(c *corev1.PersistentVolumeClaim) {
		c.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
}
func blockMode(c *corev1.PersistentVolumeClaim) {
	c.Spec.VolumeMode = new(corev1.PersistentVolumeBlock)
}

type volumeOpt func(*corev1.PersistentVolume)

func newVolume(name, size string, opts ...volumeOpt) *corev1.PersistentVolume {
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/" + name}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}
	for _, o := range opts {
		o(pv)
	}
	return pv
}

func volumeClass(name string) volumeOpt {
	return func(pv *corev1.PersistentVolume) { pv.Spec.StorageClassName = name }
}
func modes(m ...corev1.PersistentVolumeAccessMode) volumeOpt {
	return func(pv *corev1.PersistentVolume) { pv.Spec.AccessModes = m }
}
func volumeLabel(k, v string) volumeOpt {
	return func(pv *corev1.PersistentVolume) { pv.Labels = map[string]string{k: v} }
}
func claimRef(name, uid string) volumeOpt {
	return func(pv *corev1.PersistentVolume) {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "ns", Name: name, UID: types.UID(uid)}
	}
}
func reclaim(p corev1.PersistentVolumeReclaimPolicy) volumeOpt {
	return func(pv *corev1.PersistentVolume) { pv.Spec.PersistentVolumeReclaimPolicy = p }
}
func volumePhase(p corev1.PersistentVolumePhase) volumeOpt {
	return func(pv *corev1.PersistentVolume) { pv.Status.Phase = p }
}
func provisionedBy(p string) volumeOpt {
	return func(pv *corev1.PersistentVolume) {
		metav1.SetMetaDataAnnotation(&pv.ObjectMeta, "pv.kubernetes.io/provisioned-by", p)
	}
}

func newClass(name, provisioner string, mode storagev1.VolumeBindingMode, isDefault bool) *storagev1.StorageClass {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, VolumeBindingMode: &mode}
	if isDefault {
		sc.Annotations = map[string]string{annIsDefaultClass: "true"}
	}
	return sc
}

func node(name string, ready bool) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}}}}
}

// harness runs the controller against a fake clientset.
type harness struct {
	client *fake.Clientset
	mu     sync.Mutex
	events []string
}

func start(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	h := &harness{client: fake.NewClientset(objs...)}
	client := h.client
	// Nor does it set resourceVersions, which the controller compares.
	var rv atomic.Int64
	rv.Store(100)
	// The fake clientset does not check resourceVersions; the API server
	// would refuse the second of two binds of one volume read at the same
	// version. Refuse a claimRef that replaces another claim's instead.
	client.PrependReactor("update", "persistentvolumes", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pv := a.(k8stesting.UpdateAction).GetObject().(*corev1.PersistentVolume)
		pv.ResourceVersion = strconv.FormatInt(rv.Add(1), 10)
		if a.GetSubresource() != "" {
			return false, nil, nil
		}
		old, err := client.Tracker().Get(corev1.SchemeGroupVersion.WithResource("persistentvolumes"), "", pv.Name)
		if err != nil {
			return false, nil, nil
		}
		if cr := old.(*corev1.PersistentVolume).Spec.ClaimRef; cr != nil && cr.UID != "" && pv.Spec.ClaimRef != nil && cr.UID != pv.Spec.ClaimRef.UID {
			return true, nil, apierrors.NewConflict(corev1.Resource("persistentvolumes"), pv.Name, errors.New("the object has been modified"))
		}
		return false, nil, nil
	})
	rec := record.NewFakeRecorder(1000)
	factory := informers.NewSharedInformerFactory(h.client, 0)
	c := New(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})), h.client, factory, rec)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx, 2) })
	wg.Go(func() {
		for {
			select {
			case e := <-rec.Events:
				h.mu.Lock()
				h.events = append(h.events, e)
				h.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait(); factory.Shutdown() })
	return h
}

func (h *harness) claim(t *testing.T, name string) *corev1.PersistentVolumeClaim {
	c, err := h.client.CoreV1().PersistentVolumeClaims("ns").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get claim %s: %v", name, err)
	}
	return c
}

func (h *harness) volume(t *testing.T, name string) *corev1.PersistentVolume {
	pv, err := h.client.CoreV1().PersistentVolumes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get volume %s: %v", name, err)
	}
	return pv
}

func (h *harness) hasEvent(want string) (bool, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if strings.HasPrefix(e, want) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("events %q", h.events)
}

// boundTo checks claim and volume are bound to each other, as upstream leaves them.
func (h *harness) boundTo(t *testing.T, claim, volume string) (bool, string) {
	c, pv := h.claim(t, claim), h.volume(t, volume)
	cap := pv.Spec.Capacity[corev1.ResourceStorage]
	have := c.Status.Capacity[corev1.ResourceStorage]
	switch {
	case c.Spec.VolumeName != volume || c.Status.Phase != corev1.ClaimBound:
		return false, fmt.Sprintf("claim volumeName %q phase %s", c.Spec.VolumeName, c.Status.Phase)
	case c.Annotations["pv.kubernetes.io/bind-completed"] != "yes":
		return false, fmt.Sprintf("claim annotations %v", c.Annotations)
	case have.Cmp(cap) != 0 || len(c.Status.AccessModes) == 0:
		return false, fmt.Sprintf("claim status %+v", c.Status)
	case pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != c.UID || pv.Status.Phase != corev1.VolumeBound:
		return false, fmt.Sprintf("volume claimRef %+v phase %s", pv.Spec.ClaimRef, pv.Status.Phase)
	}
	return true, ""
}

func TestBinding(t *testing.T) {
	wffc, immediate := storagev1.VolumeBindingWaitForFirstConsumer, storagev1.VolumeBindingImmediate
	tests := []struct {
		name string
		objs []runtime.Object
		want func(t *testing.T, h *harness) (bool, string)
		// never must stay false (checked once want holds).
		never func(t *testing.T, h *harness) (bool, string)
	}{
		{
			name: "static volume and claim bind",
			objs: []runtime.Object{newClaim("data", "1Gi"), newVolume("pv1", "2Gi")},
			want: func(t *testing.T, h *harness) (bool, string) {
				if ok, d := h.boundTo(t, "data", "pv1"); !ok {
					return ok, d
				}
				pv, c := h.volume(t, "pv1"), h.claim(t, "data")
				return pv.Annotations["pv.kubernetes.io/bound-by-controller"] == "yes" && c.Annotations["pv.kubernetes.io/bound-by-controller"] == "yes",
					fmt.Sprintf("volume %v claim %v", pv.Annotations, c.Annotations)
			},
		},
		{
			name: "smallest volume that fits, fewest access modes first",
			objs: []runtime.Object{
				newClaim("data", "1Gi"),
				newVolume("tiny", "512Mi"),
				newVolume("rwo-rox", "1Gi", modes(corev1.ReadWriteOnce, corev1.ReadOnlyMany)),
				newVolume("big", "5Gi"),
				newVolume("mid", "2Gi"),
			},
			want: func(t *testing.T, h *harness) (bool, string) { return h.boundTo(t, "data", "mid") },
		},
		{
			name: "selector and class choose",
			objs: []runtime.Object{
				newClaim("data", "1Gi", claimClass("gold"), claimSelector("tier", "db")),
				newVolume("wrong-class", "1Gi", volumeClass("silver"), volumeLabel("tier", "db")),
				newVolume("wrong-label", "1Gi", volumeClass("gold"), volumeLabel("tier", "web")),
				newVolume("right", "3Gi", volumeClass("gold"), volumeLabel("tier", "db")),
			},
			want: func(t *testing.T, h *harness) (bool, string) { return h.boundTo(t, "data", "right") },
		},
		{
			name: "volumeMode must match",
			objs: []runtime.Object{newClaim("data", "1Gi", blockMode), newVolume("pv1", "1Gi")},
			want: func(t *testing.T, h *harness) (bool, string) {
				return h.hasEvent("Normal FailedBinding no persistent volumes available for this claim and no storage class is set")
			},
			never: func(t *testing.T, h *harness) (bool, string) { return h.volume(t, "pv1").Spec.ClaimRef != nil, "" },
		},
		{
			name: "a volume pre-bound to another claim is not taken; one pre-bound to this claim wins",
			objs: []runtime.Object{
				newClaim("data", "1Gi"),
				newVolume("other", "1Gi", claimRef("other", "")),
				newVolume("mine", "10Gi", claimRef("data", "")),
			},
			want: func(t *testing.T, h *harness) (bool, string) {
				if ok, d := h.boundTo(t, "data", "mine"); !ok {
					return ok, d
				}
				// Bound by the user: no bound-by-controller on the volume.
				pv := h.volume(t, "mine")
				return pv.Annotations["pv.kubernetes.io/bound-by-controller"] == "" && h.volume(t, "other").Status.Phase == corev1.VolumeAvailable, fmt.Sprintf("%v", pv.Annotations)
			},
		},
		{
			name: "spec.volumeName names the volume",
			objs: []runtime.Object{newClaim("data", "1Gi", claimVolumeName("named")), newVolume("named", "8Gi"), newVolume("better", "1Gi")},
			want: func(t *testing.T, h *harness) (bool, string) { return h.boundTo(t, "data", "named") },
		},
		{
			name: "spec.volumeName of a volume too small",
			objs: []runtime.Object{newClaim("data", "2Gi", claimVolumeName("small")), newVolume("small", "1Gi")},
			want: func(t *testing.T, h *harness) (bool, string) {
				return h.hasEvent(`Warning VolumeMismatch Cannot bind to requested volume "small": requested PV is too small`)
			},
		},
		{
			name: "a class that does not exist",
			objs: []runtime.Object{newClaim("data", "1Gi", claimClass("nope"))},
			want: func(t *testing.T, h *harness) (bool, string) {
				return h.hasEvent(`Warning ProvisioningFailed storageclass.storage.k8s.io "nope" not found`)
			},
		},
		{
			name: "WaitForFirstConsumer waits for selected-node",
			objs: []runtime.Object{newClass("local", LocalProvisioner, wffc, false), newClaim("data", "1Gi", claimClass("local"))},
			want: func(t *testing.T, h *harness) (bool, string) {
				return h.hasEvent("Normal WaitForFirstConsumer waiting for first consumer to be created before binding")
			},
			never: func(t *testing.T, h *harness) (bool, string) {
				_, ok := h.claim(t, "data").Annotations["volume.kubernetes.io/storage-provisioner"]
				return ok, ""
			},
		},
		{
			name: "WaitForFirstConsumer with selected-node goes to the provisioner",
			objs: []runtime.Object{newClass("local", LocalProvisioner, wffc, false),
				newClaim("data", "1Gi", claimClass("local"), claimAnnotation("volume.kubernetes.io/selected-node", "n1"))},
			want: func(t *testing.T, h *harness) (bool, string) {
				a := h.claim(t, "data").Annotations
				if a["volume.kubernetes.io/storage-provisioner"] != LocalProvisioner || a["volume.beta.kubernetes.io/storage-provisioner"] != LocalProvisioner {
					return false, fmt.Sprintf("annotations %v", a)
				}
				return h.hasEvent("Normal ExternalProvisioning Waiting for a volume to be created either by the external provisioner 'wharf.dev/local'")
			},
		},
		{
			name: "Immediate local claim: the ready node with the fewest claims",
			objs: []runtime.Object{
				newClass("fast", LocalProvisioner, immediate, false),
				node("n1", true), node("n2", true), node("n0", false),
				newClaim("old", "1Gi", claimClass("fast"), claimAnnotation("volume.kubernetes.io/selected-node", "n1")),
				newClaim("data", "1Gi", claimClass("fast")),
			},
			want: func(t *testing.T, h *harness) (bool, string) {
				a := h.claim(t, "data").Annotations
				return a["volume.kubernetes.io/selected-node"] == "n2" && a["volume.kubernetes.io/storage-provisioner"] == LocalProvisioner, fmt.Sprintf("%v", a)
			},
		},
		{
			name: "a provisioned volume binds its claim",
			objs: []runtime.Object{
				newClass("local", LocalProvisioner, wffc, false),
				newClaim("data", "1Gi", claimClass("local"), claimAnnotation("volume.kubernetes.io/selected-node", "n1")),
				newVolume("pvc-uid-data", "1Gi", volumeClass("local"), claimRef("data", "uid-data"), provisionedBy(LocalProvisioner), volumePhase(corev1.VolumePending)),
			},
			want: func(t *testing.T, h *harness) (bool, string) { return h.boundTo(t, "data", "pvc-uid-data") },
		},
		{
			name: "claim without a class gets the default",
			objs: []runtime.Object{newClass("old-default", LocalProvisioner, wffc, true), newClaim("data", "1Gi", noClass)},
			want: func(t *testing.T, h *harness) (bool, string) {
				sc := h.claim(t, "data").Spec.StorageClassName
				return sc != nil && *sc == "old-default", fmt.Sprintf("%v", sc)
			},
		},
		{
			name: "claim gone, Retain: Released",
			objs: []runtime.Object{newVolume("pv1", "1Gi", claimRef("gone", "uid-gone"), volumePhase(corev1.VolumeBound))},
			want: func(t *testing.T, h *harness) (bool, string) {
				pv := h.volume(t, "pv1")
				return pv.Status.Phase == corev1.VolumeReleased && pv.Spec.ClaimRef != nil, string(pv.Status.Phase)
			},
		},
		{
			name: "claim gone, Delete by the provisioner: Released and left to it",
			objs: []runtime.Object{newVolume("pv1", "1Gi", claimRef("gone", "uid-gone"), reclaim(corev1.PersistentVolumeReclaimDelete),
				provisionedBy(LocalProvisioner), volumePhase(corev1.VolumeBound))},
			want: func(t *testing.T, h *harness) (bool, string) {
				pv := h.volume(t, "pv1")
				return pv.Status.Phase == corev1.VolumeReleased, string(pv.Status.Phase)
			},
			never: func(t *testing.T, h *harness) (bool, string) {
				return h.volume(t, "pv1").Status.Phase == corev1.VolumeFailed, ""
			},
		},
		{
			name: "claim gone, Delete with no provisioner: Failed",
			objs: []runtime.Object{newVolume("pv1", "1Gi", claimRef("gone", "uid-gone"), reclaim(corev1.PersistentVolumeReclaimDelete), volumePhase(corev1.VolumeBound))},
			want: func(t *testing.T, h *harness) (bool, string) {
				if pv := h.volume(t, "pv1"); pv.Status.Phase != corev1.VolumeFailed {
					return false, string(pv.Status.Phase)
				}
				return h.hasEvent(`Warning VolumeFailedDelete error getting deleter volume plugin for volume "pv1": no deletable volume plugin matched`)
			},
		},
		{
			name: "claim recreated under the same name: the volume is Released",
			objs: []runtime.Object{newClaim("data", "1Gi"), newVolume("pv1", "1Gi", claimRef("data", "uid-old"), volumePhase(corev1.VolumeBound))},
			want: func(t *testing.T, h *harness) (bool, string) {
				pv := h.volume(t, "pv1")
				return pv.Status.Phase == corev1.VolumeReleased, string(pv.Status.Phase)
			},
		},
		{
			name: "bound claim whose volume is gone: Lost",
			objs: []runtime.Object{newClaim("data", "1Gi", claimVolumeName("gone"), claimAnnotation("pv.kubernetes.io/bind-completed", "yes"))},
			want: func(t *testing.T, h *harness) (bool, string) {
				c := h.claim(t, "data")
				if c.Status.Phase != corev1.ClaimLost {
					return false, string(c.Status.Phase)
				}
				return h.hasEvent("Warning ClaimLost Bound claim has lost its PersistentVolume. Data on the volume is lost!")
			},
		},
		{
			name: "an unused volume becomes Available",
			objs: []runtime.Object{newVolume("pv1", "1Gi", volumePhase(corev1.VolumePending))},
			want: func(t *testing.T, h *harness) (bool, string) {
				pv := h.volume(t, "pv1")
				return pv.Status.Phase == corev1.VolumeAvailable && pv.Status.LastPhaseTransitionTime != nil, string(pv.Status.Phase)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := start(t, tt.objs...)
			testwait.For(t, tt.name, func() (bool, string) { return tt.want(t, h) })
			if tt.never != nil {
				if bad, d := tt.never(t, h); bad {
					t.Errorf("unexpected state %s", d)
				}
			}
		})
	}
}

// TestManyClaimsOnePool binds 30 claims to a pool of 30 equal volumes:
// every claim gets its own volume.
func TestManyClaimsOnePool(t *testing.T) {
	var objs []runtime.Object
	for i := range 30 {
		objs = append(objs, newClaim(fmt.Sprintf("c%d", i), "1Gi"), newVolume(fmt.Sprintf("pv%d", i), "1Gi"))
	}
	h := start(t, objs...)
	testwait.For(t, "all bound", func() (bool, string) {
		seen := map[string]string{}
		for i := range 30 {
			c := h.claim(t, fmt.Sprintf("c%d", i))
			if c.Status.Phase != corev1.ClaimBound {
				return false, c.Name + " " + string(c.Status.Phase)
			}
			if other, dup := seen[c.Spec.VolumeName]; dup {
				t.Fatalf("claims %s and %s both bound to %s", other, c.Name, c.Spec.VolumeName)
			}
			seen[c.Spec.VolumeName] = c.Name
			if ok, d := h.boundTo(t, c.Name, c.Spec.VolumeName); !ok {
				return false, d
			}
		}
		return true, ""
	})
}
