package localpv

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// fakeVolumes is Volumes in memory: sizes by name, with a disk of free
// bytes.
type fakeVolumes struct {
	mu      sync.Mutex
	free    int64
	sizes   map[string]int64
	mounted map[string]bool
	partial map[string]bool // made half way (a crash)
}

func newFakeVolumes(free int64) *fakeVolumes {
	return &fakeVolumes{free: free, sizes: map[string]int64{}, mounted: map[string]bool{}, partial: map[string]bool{}}
}

func (f *fakeVolumes) Path(name string) string { return "/state/volumes/" + name + "/mount" }

func (f *fakeVolumes) Create(_ context.Context, name string, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sizes[name]; ok {
		f.mounted[name] = true
		return nil
	}
	if size > f.free {
		return fmt.Errorf("volume %s of %d bytes: %w on the node (%d bytes available)", name, size, ErrNoSpace, f.free)
	}
	delete(f.partial, name)
	f.free -= size
	f.sizes[name], f.mounted[name] = size, true
	return nil
}

func (f *fakeVolumes) Mount(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mounted[name] = true
	return nil
}

func (f *fakeVolumes) Expand(_ context.Context, name string, size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if size-f.sizes[name] > f.free {
		return fmt.Errorf("volume %s: %w", name, ErrNoSpace)
	}
	f.free -= size - f.sizes[name]
	f.sizes[name] = size
	return nil
}

func (f *fakeVolumes) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free += f.sizes[name]
	delete(f.sizes, name)
	delete(f.mounted, name)
	delete(f.partial, name)
	return nil
}

func (f *fakeVolumes) Exists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sizes[name]
	return ok
}

func (f *fakeVolumes) List() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.sizes {
		names = append(names, n)
	}
	for n := range f.partial {
		names = append(names, n)
	}
	return names, nil
}

func (f *fakeVolumes) size(name string) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sizes[name]
	return s, ok
}

const gi = int64(1) << 30

func class(name string, expand bool, reclaim v1.PersistentVolumeReclaimPolicy) *storagev1.StorageClass {
	mode := storagev1.VolumeBindingWaitForFirstConsumer
	return &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: Name,
		ReclaimPolicy: &reclaim, AllowVolumeExpansion: &expand, VolumeBindingMode: &mode,
	}
}

func claim(name, node, size string, opts ...func(*v1.PersistentVolumeClaim)) *v1.PersistentVolumeClaim {
	c := &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "team", Name: name, UID: types.UID("uid-" + name),
			Annotations: map[string]string{AnnStorageProvisioner: Name, AnnSelectedNode: node},
		},
		Spec: v1.PersistentVolumeClaimSpec{
			AccessModes:      []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			StorageClassName: ptr.To("local"),
			Resources:        v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}},
		},
		Status: v1.PersistentVolumeClaimStatus{Phase: v1.ClaimPending},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

type harness struct {
	t      *testing.T
	client *fake.Clientset
	vols   Volumes
	p      *Provisioner
	events *record.FakeRecorder
	seen   []string
	ctx    context.Context
}

func newHarness(t *testing.T, vols Volumes, objs ...runtime.Object) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := &harness{t: t, client: fake.NewClientset(objs...), vols: vols, events: record.NewFakeRecorder(100), ctx: ctx}
	h.p = New(Config{
		NodeName: "n1", Client: h.client, Volumes: vols, Recorder: h.events,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	h.p.Start(ctx)
	h.until("informers synced", h.p.HasSynced)
	return h
}

// until processes queued keys until cond holds.
func (h *harness) until(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		if h.p.Len() > 0 {
			h.p.ProcessNext(h.ctx)
			continue
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settle processes keys until none has been queued for a while.
func (h *harness) settle() {
	h.t.Helper()
	quiet := time.Now()
	for time.Since(quiet) < 100*time.Millisecond {
		if h.p.Len() > 0 {
			h.p.ProcessNext(h.ctx)
			quiet = time.Now()
			continue
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// drainEvents returns the events recorded so far, all of them so far.
func (h *harness) drainEvents() []string {
	for {
		select {
		case e := <-h.events.Events:
			h.seen = append(h.seen, e)
		default:
			return h.seen
		}
	}
}

func (h *harness) hasEvent(prefix string) bool {
	for _, e := range h.drainEvents() {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func (h *harness) pv(name string) *v1.PersistentVolume {
	pv, err := h.client.CoreV1().PersistentVolumes().Get(h.ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return pv
}

func TestProvision(t *testing.T) {
	h := newHarness(t, newFakeVolumes(100*gi), class("local", false, v1.PersistentVolumeReclaimDelete),
		claim("data", "n1", "1Gi"))
	h.until("the PV", func() bool { return h.pv("pvc-uid-data") != nil })
	fsType := "ext4"
	fs := v1.PersistentVolumeFilesystem
	want := &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "pvc-uid-data",
			Labels:      map[string]string{LabelNode: "n1"},
			Annotations: map[string]string{AnnProvisionedBy: Name},
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: v1.PersistentVolumeReclaimDelete,
			StorageClassName:              "local",
			VolumeMode:                    &fs,
			ClaimRef:                      &v1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: "team", Name: "data", UID: "uid-data"},
			PersistentVolumeSource:        v1.PersistentVolumeSource{Local: &v1.LocalVolumeSource{Path: "/state/volumes/pvc-uid-data/mount", FSType: &fsType}},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{"n1"}}},
			}}}},
		},
	}
	got := h.pv("pvc-uid-data")
	got = &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: got.Name, Labels: got.Labels, Annotations: got.Annotations},
		Spec:       got.Spec,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PV (-want +got):\n%s", diff)
	}
	if size, ok := h.vols.(*fakeVolumes).size("pvc-uid-data"); !ok || size != gi {
		t.Errorf("volume size %d (made %v), want %d", size, ok, gi)
	}
	h.until("the success event", func() bool {
		return h.hasEvent("Normal ProvisioningSucceeded Successfully provisioned volume pvc-uid-data")
	})
}

func TestNotOurs(t *testing.T) {
	other := claim("other-node", "n2", "1Gi")
	otherProv := claim("other-provisioner", "n1", "1Gi", func(c *v1.PersistentVolumeClaim) {
		c.Annotations[AnnStorageProvisioner] = "example.com/nfs"
	})
	bound := claim("bound", "n1", "1Gi", func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeName = "pv-x" })
	notSelected := claim("not-selected", "", "1Gi")
	h := newHarness(t, newFakeVolumes(100*gi), class("local", false, v1.PersistentVolumeReclaimDelete),
		other, otherProv, bound, notSelected)
	h.settle()
	if names, _ := h.vols.List(); len(names) != 0 {
		t.Errorf("volumes made: %v", names)
	}
	pvs, _ := h.client.CoreV1().PersistentVolumes().List(h.ctx, metav1.ListOptions{})
	if len(pvs.Items) != 0 {
		t.Errorf("%d PVs made", len(pvs.Items))
	}
}

func TestProvisioningFails(t *testing.T) {
	tests := []struct {
		name  string
		claim *v1.PersistentVolumeClaim
		event string
	}{
		{"larger than the disk", claim("huge", "n1", "100Ti"),
			`Warning ProvisioningFailed failed to provision volume with StorageClass "local": node "n1": volume pvc-uid-huge of 109951162777600 bytes: not enough free space on the node (10737418240 bytes available)`},
		{"block mode", claim("block", "n1", "1Gi", func(c *v1.PersistentVolumeClaim) { c.Spec.VolumeMode = ptr.To(v1.PersistentVolumeBlock) }),
			`Warning ProvisioningFailed failed to provision volume with StorageClass "local": volumeMode Block is not supported by wharf.dev/local`},
		{"read-write-many", claim("rwx", "n1", "1Gi", func(c *v1.PersistentVolumeClaim) {
			c.Spec.AccessModes = []v1.PersistentVolumeAccessMode{v1.ReadWriteMany}
		}), `Warning ProvisioningFailed failed to provision volume with StorageClass "local": access mode ReadWriteMany is not supported: a local volume is on one node`},
		{"no class", claim("nocls", "n1", "1Gi", func(c *v1.PersistentVolumeClaim) { c.Spec.StorageClassName = ptr.To("gone") }),
			`Warning ProvisioningFailed storageclass.storage.k8s.io "gone" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, newFakeVolumes(10*gi), class("local", false, v1.PersistentVolumeReclaimDelete), tt.claim)
			h.until("the event", func() bool { return h.hasEvent(tt.event) })
			h.settle()
			if names, _ := h.vols.List(); len(names) != 0 {
				t.Errorf("volumes made: %v", names)
			}
			if pv := h.pv(VolumeName(tt.claim)); pv != nil {
				t.Errorf("PV made: %v", pv.Name)
			}
		})
	}
}

func TestClassArrivesLater(t *testing.T) {
	h := newHarness(t, newFakeVolumes(10*gi), claim("data", "n1", "1Gi"))
	h.until("the failure", func() bool {
		return h.hasEvent(`Warning ProvisioningFailed storageclass.storage.k8s.io "local" not found`)
	})
	if _, err := h.client.StorageV1().StorageClasses().Create(h.ctx, class("local", false, v1.PersistentVolumeReclaimDelete), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.until("the PV", func() bool { return h.pv("pvc-uid-data") != nil })
}

// ourPV is a PV the provisioner made for claim c, bound.
func ourPV(c *v1.PersistentVolumeClaim, reclaim v1.PersistentVolumeReclaimPolicy, phase v1.PersistentVolumePhase) *v1.PersistentVolume {
	p := New(Config{NodeName: "n1", Volumes: newFakeVolumes(0), Client: fake.NewClientset()})
	pv := p.newPV(c, class("local", true, reclaim), VolumeName(c), c.Spec.Resources.Requests[v1.ResourceStorage])
	pv.UID = "pv-uid"
	pv.Status.Phase = phase
	return pv
}

func TestReclaim(t *testing.T) {
	tests := []struct {
		name     string
		reclaim  v1.PersistentVolumeReclaimPolicy
		phase    v1.PersistentVolumePhase
		wantGone bool
	}{
		{"released, delete", v1.PersistentVolumeReclaimDelete, v1.VolumeReleased, true},
		{"released, retain", v1.PersistentVolumeReclaimRetain, v1.VolumeReleased, false},
		{"bound, delete", v1.PersistentVolumeReclaimDelete, v1.VolumeBound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claim("data", "n1", "1Gi")
			vols := newFakeVolumes(10 * gi)
			if err := vols.Create(context.Background(), VolumeName(c), gi); err != nil {
				t.Fatal(err)
			}
			vols.mounted = map[string]bool{} // as after a reboot
			h := newHarness(t, vols, class("local", false, tt.reclaim), ourPV(c, tt.reclaim, tt.phase))
			if tt.wantGone {
				h.until("the PV's deletion", func() bool { return h.pv("pvc-uid-data") == nil })
				if vols.Exists("pvc-uid-data") {
					t.Error("volume kept")
				}
				return
			}
			h.settle()
			if h.pv("pvc-uid-data") == nil || !vols.Exists("pvc-uid-data") {
				t.Error("PV or volume deleted")
			}
			if !vols.mounted["pvc-uid-data"] {
				t.Error("volume not mounted again")
			}
		})
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name      string
		expand    bool
		free      int64
		wantSize  int64
		wantEvent string
	}{
		{"allowed", true, 10 * gi, 2 * gi, `Normal FileSystemResizeSuccessful MountVolume.NodeExpandVolume succeeded for volume "pvc-uid-data"`},
		{"not allowed by the class", false, 10 * gi, gi, `Warning VolumeResizeFailed storage class "local" does not allow volume expansion`},
		{"no room", true, 0, gi, `Warning VolumeResizeFailed expand volume pvc-uid-data to 2Gi: volume pvc-uid-data: not enough free space`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := claim("data", "n1", "2Gi", func(c *v1.PersistentVolumeClaim) {
				c.Spec.VolumeName = "pvc-uid-data"
				c.Status = v1.PersistentVolumeClaimStatus{Phase: v1.ClaimBound, Capacity: v1.ResourceList{v1.ResourceStorage: resource.MustParse("1Gi")}}
			})
			old := claim("data", "n1", "1Gi")
			vols := newFakeVolumes(tt.free + gi)
			if err := vols.Create(context.Background(), VolumeName(c), gi); err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, vols, class("local", tt.expand, v1.PersistentVolumeReclaimDelete), c, ourPV(old, v1.PersistentVolumeReclaimDelete, v1.VolumeBound))
			h.until("the event", func() bool { return h.hasEvent(tt.wantEvent) })
			h.settle()
			if size, _ := vols.size("pvc-uid-data"); size != tt.wantSize {
				t.Errorf("volume size %d, want %d", size, tt.wantSize)
			}
			wantQ := *resource.NewQuantity(tt.wantSize, resource.BinarySI)
			pvCap := h.pv("pvc-uid-data").Spec.Capacity[v1.ResourceStorage]
			got, _ := h.client.CoreV1().PersistentVolumeClaims("team").Get(h.ctx, "data", metav1.GetOptions{})
			claimCap := got.Status.Capacity[v1.ResourceStorage]
			if pvCap.Cmp(wantQ) != 0 || claimCap.Cmp(wantQ) != 0 {
				t.Errorf("PV capacity %s, claim capacity %s; want %s", pvCap.String(), claimCap.String(), wantQ.String())
			}
		})
	}
}

// TestRestart: a provisioner killed between making a volume and its PV
// (the PV's create failed) leaves a volume that the next one either
// gives its PV (the claim still waits) or removes (the claim is gone).
func TestRestart(t *testing.T) {
	vols := newFakeVolumes(10 * gi)
	waiting, gone := claim("waiting", "n1", "1Gi"), claim("gone", "n1", "1Gi")
	for _, c := range []*v1.PersistentVolumeClaim{waiting, gone} {
		if err := vols.Create(context.Background(), VolumeName(c), gi); err != nil {
			t.Fatal(err)
		}
	}
	vols.partial["pvc-uid-half"] = true // a crash while formatting
	kept := claim("kept", "n1", "1Gi")
	if err := vols.Create(context.Background(), VolumeName(kept), gi); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, vols, class("local", false, v1.PersistentVolumeReclaimDelete), waiting,
		ourPV(kept, v1.PersistentVolumeReclaimDelete, v1.VolumeBound))
	if err := h.p.Sweep(h.ctx); err != nil {
		t.Fatal(err)
	}
	h.until("the waiting claim's PV", func() bool { return h.pv("pvc-uid-waiting") != nil })
	names, _ := vols.List()
	want := map[string]bool{"pvc-uid-waiting": true, "pvc-uid-kept": true}
	if len(names) != len(want) {
		t.Errorf("volumes %v, want those of %v", names, want)
	}
	for _, n := range names {
		if !want[n] {
			t.Errorf("volume %s left", n)
		}
	}
}

// TestPVCreateFails: the PV's create failing leaves the volume for the
// retry, which makes the PV without making a second volume.
func TestPVCreateFails(t *testing.T) {
	vols := newFakeVolumes(10 * gi)
	h := newHarness(t, vols, class("local", false, v1.PersistentVolumeReclaimDelete))
	fails := 1
	h.client.PrependReactor("create", "persistentvolumes", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fails > 0 {
			fails--
			return true, nil, apierrors.NewServiceUnavailable("etcd is down")
		}
		return false, nil, nil
	})
	if _, err := h.client.CoreV1().PersistentVolumeClaims("team").Create(h.ctx, claim("data", "n1", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.until("the PV", func() bool { return h.pv("pvc-uid-data") != nil })
	if vols.free != 9*gi {
		t.Errorf("free %d after one volume of 1Gi, want %d", vols.free, 9*gi)
	}
}
