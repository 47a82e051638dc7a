package localpv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// The names this provisioner answers to and writes, as Kubernetes'
// external provisioners.
const (
	// Name is the provisioner's name, a StorageClass's provisioner.
	Name = "wharf.dev/local"
	// AnnStorageProvisioner on a claim names the provisioner the binding
	// controller chose for it; AnnBetaStorageProvisioner is its old name.
	AnnStorageProvisioner     = "volume.kubernetes.io/storage-provisioner"
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	// AnnSelectedNode on a claim names the node its volume is made on.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnProvisionedBy on a PV names the provisioner that made it.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// LabelNode on the PVs this provisioner makes holds the node's
	// hostname label, so that each agent watches only its own PVs.
	LabelNode = "local.wharf.dev/node"
)

// Event reasons, upstream's.
const (
	eventProvisioning       = "Provisioning"
	eventProvisioningFailed = "ProvisioningFailed"
	eventProvisioned        = "ProvisioningSucceeded"
	eventResizeFailed       = "VolumeResizeFailed"
	eventResized            = "FileSystemResizeSuccessful"
)

// Volumes is where volumes are made; Disk is the real one.
type Volumes interface {
	// Path is where volume name is mounted: the PV's spec.local.path.
	Path(name string) string
	// Create makes (or finds) volume name of size bytes and mounts it; a
	// volume that does not fit fails with ErrNoSpace.
	Create(ctx context.Context, name string, size int64) error
	// Mount mounts an existing volume again (after a restart or reboot).
	Mount(ctx context.Context, name string) error
	// Expand grows a volume, mounted, to size bytes (ErrNoSpace).
	Expand(ctx context.Context, name string, size int64) error
	// Remove deletes a volume, whole or half made.
	Remove(ctx context.Context, name string) error
	// Exists: volume name was made whole.
	Exists(name string) bool
	// List names every volume, whole or not.
	List() ([]string, error)
}

// Config says what a Provisioner serves.
type Config struct {
	NodeName string
	// Hostname is the node's kubernetes.io/hostname label, what the PVs'
	// node affinity requires (default NodeName).
	Hostname string
	Client   kubernetes.Interface
	Volumes  Volumes
	Logger   *slog.Logger
	// Recorder records events on claims (default: one writing to Client).
	Recorder record.EventRecorder
}

type key struct {
	pv   bool
	name string // namespace/name of a claim, name of a PV
}

// Provisioner is the wharf.dev/local provisioner of one node.
type Provisioner struct {
	cfg      Config
	log      *slog.Logger
	recorder record.EventRecorder
	queue    workqueue.TypedRateLimitingInterface[key]

	factory, pvFactory informers.SharedInformerFactory
	claims             corelisters.PersistentVolumeClaimLister
	pvs                corelisters.PersistentVolumeLister
	classes            storagelisters.StorageClassLister
	synced             []cache.InformerSynced
}

// New returns the provisioner of cfg.NodeName; Run starts it.
func New(cfg Config) *Provisioner {
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.NodeName
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Provisioner{
		cfg: cfg, log: cfg.Logger, recorder: cfg.Recorder,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "localpv"}),
		factory: informers.NewSharedInformerFactory(cfg.Client, 0),
		// Only this node's PVs: the label is ours.
		pvFactory: informers.NewSharedInformerFactoryWithOptions(cfg.Client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = labels.Set{LabelNode: cfg.Hostname}.String()
		})),
	}
	claimInf := p.factory.Core().V1().PersistentVolumeClaims()
	classInf := p.factory.Storage().V1().StorageClasses()
	pvInf := p.pvFactory.Core().V1().PersistentVolumes()
	p.claims, p.classes, p.pvs = claimInf.Lister(), classInf.Lister(), pvInf.Lister()
	// Claims of every namespace arrive (no server-side selector matches
	// annotations); only this node's are queued.
	claimReg, _ := claimInf.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			c, ok := obj.(*v1.PersistentVolumeClaim)
			return ok && p.ours(c)
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { p.enqueueClaim(obj) },
			UpdateFunc: func(_, obj any) { p.enqueueClaim(obj) },
		},
	})
	pvReg, _ := pvInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.enqueuePV(obj) },
		UpdateFunc: func(_, obj any) { p.enqueuePV(obj) },
	})
	// A class made after its claims: look at the waiting claims again.
	classReg, _ := classInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { p.requeuePending() },
	})
	p.synced = []cache.InformerSynced{claimReg.HasSynced, pvReg.HasSynced, classReg.HasSynced}
	return p
}

// Run provisions until ctx is done. It first removes the volumes left
// without a PV or a claim waiting for one (a crash while creating).
func (p *Provisioner) Run(ctx context.Context) error {
	if p.recorder == nil {
		b := record.NewBroadcaster(record.WithContext(ctx))
		b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: p.cfg.Client.CoreV1().Events("")})
		defer b.Shutdown()
		p.recorder = b.NewRecorder(scheme.Scheme, v1.EventSource{Component: "wharf.dev/local", Host: p.cfg.NodeName})
	}
	p.Start(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return ctx.Err()
	}
	if err := p.Sweep(ctx); err != nil {
		p.log.Warn("sweeping orphaned volumes", "err", err)
	}
	controllerutil.RunWorkers(ctx, p.log, p.queue, 2, p.sync)
	return nil
}

// Start starts the informers (Run does; tests call it themselves).
func (p *Provisioner) Start(ctx context.Context) {
	p.factory.Start(ctx.Done())
	p.pvFactory.Start(ctx.Done())
}

// HasSynced reports whether the informers have synced.
func (p *Provisioner) HasSynced() bool {
	for _, s := range p.synced {
		if !s() {
			return false
		}
	}
	return true
}

// ours: a claim whose volume this node makes.
func (p *Provisioner) ours(c *v1.PersistentVolumeClaim) bool {
	prov := c.Annotations[AnnStorageProvisioner]
	if prov == "" {
		prov = c.Annotations[AnnBetaStorageProvisioner]
	}
	return prov == Name && c.Annotations[AnnSelectedNode] == p.cfg.NodeName
}

// ourPV: a PV this node's provisioner made.
func (p *Provisioner) ourPV(pv *v1.PersistentVolume) bool {
	return pv.Annotations[AnnProvisionedBy] == Name && pv.Labels[LabelNode] == p.cfg.Hostname && pv.Spec.Local != nil
}

func (p *Provisioner) enqueueClaim(obj any) {
	if k, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
		p.queue.Add(key{name: k})
	}
}

func (p *Provisioner) enqueuePV(obj any) {
	if pv, ok := obj.(*v1.PersistentVolume); ok {
		p.queue.Add(key{pv: true, name: pv.Name})
	}
}

func (p *Provisioner) requeuePending() {
	claims, _ := p.claims.List(labels.Everything())
	for _, c := range claims {
		if p.ours(c) && c.Spec.VolumeName == "" {
			p.enqueueClaim(c)
		}
	}
}

func (p *Provisioner) sync(ctx context.Context, k key) error {
	if k.pv {
		return p.syncPV(ctx, k.name)
	}
	return p.syncClaim(ctx, k.name)
}

// VolumeName is the name of the volume and PV of a claim.
func VolumeName(c *v1.PersistentVolumeClaim) string { return "pvc-" + string(c.UID) }

func (p *Provisioner) syncClaim(ctx context.Context, k string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return nil
	}
	c, err := p.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.ours(c) {
		return nil
	}
	if c.Spec.VolumeName != "" {
		return p.expand(ctx, c)
	}
	if c.DeletionTimestamp != nil {
		return nil
	}
	return p.provision(ctx, c)
}

func (p *Provisioner) provision(ctx context.Context, c *v1.PersistentVolumeClaim) error {
	vol := VolumeName(c)
	if _, err := p.pvs.Get(vol); err == nil {
		return nil // made; the binding controller binds it
	}
	className := ""
	if c.Spec.StorageClassName != nil {
		className = *c.Spec.StorageClassName
	}
	class, err := p.classes.Get(className)
	if err != nil {
		if apierrors.IsNotFound(err) {
			p.claimEvent(c, v1.EventTypeWarning, eventProvisioningFailed, "storageclass.storage.k8s.io %q not found", className)
			return nil // the class's arrival requeues the claim
		}
		return err
	}
	if class.Provisioner != Name {
		return nil
	}
	if msg := unsupported(c); msg != "" {
		p.claimEvent(c, v1.EventTypeWarning, eventProvisioningFailed, "failed to provision volume with StorageClass %q: %s", class.Name, msg)
		return nil
	}
	size := c.Spec.Resources.Requests[v1.ResourceStorage]
	p.claimEvent(c, v1.EventTypeNormal, eventProvisioning, "External provisioner is provisioning volume for claim %q", c.Namespace+"/"+c.Name)
	if err := p.cfg.Volumes.Create(ctx, vol, imageSize(size)); err != nil {
		p.claimEvent(c, v1.EventTypeWarning, eventProvisioningFailed, "failed to provision volume with StorageClass %q: node %q: %v", class.Name, p.cfg.NodeName, err)
		if errors.Is(err, ErrNoSpace) {
			// Nothing was made; try again later, with back-off, in case
			// space is freed.
			return fmt.Errorf("claim %s/%s: %w", c.Namespace, c.Name, controllerutil.ErrRequeue)
		}
		return fmt.Errorf("claim %s/%s: %w", c.Namespace, c.Name, err)
	}
	pv := p.newPV(c, class, vol, size)
	if _, err := p.cfg.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("claim %s/%s: create PV %s: %w", c.Namespace, c.Name, vol, err)
	}
	p.log.Info("provisioned", "claim", c.Namespace+"/"+c.Name, "pv", vol, "size", size.String())
	p.claimEvent(c, v1.EventTypeNormal, eventProvisioned, "Successfully provisioned volume %s", vol)
	return nil
}

// unsupported says why the claim cannot have a volume here, or "".
func unsupported(c *v1.PersistentVolumeClaim) string {
	size, ok := c.Spec.Resources.Requests[v1.ResourceStorage]
	switch {
	case c.Spec.VolumeMode != nil && *c.Spec.VolumeMode == v1.PersistentVolumeBlock:
		return "volumeMode Block is not supported by " + Name
	case c.Spec.DataSource != nil || c.Spec.DataSourceRef != nil:
		return "data sources are not supported by " + Name
	case c.Spec.Selector != nil:
		return "claim Selector is not supported"
	case !ok || size.Sign() <= 0:
		return "the claim requests no storage"
	}
	for _, m := range c.Spec.AccessModes {
		if m == v1.ReadWriteMany || m == v1.ReadOnlyMany {
			return fmt.Sprintf("access mode %s is not supported: a local volume is on one node", m)
		}
	}
	return ""
}

// imageSize is the size of the image of a volume of capacity q: whole
// 4 KiB blocks, at least 1 MiB (ext4's smallest useful filesystem).
func imageSize(q resource.Quantity) int64 {
	n := q.Value()
	n = (n + 4095) &^ 4095
	return max(n, 1<<20)
}

func (p *Provisioner) newPV(c *v1.PersistentVolumeClaim, class *storagev1.StorageClass, vol string, size resource.Quantity) *v1.PersistentVolume {
	reclaim := v1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		reclaim = *class.ReclaimPolicy
	}
	fs := v1.PersistentVolumeFilesystem
	fsType := "ext4"
	return &v1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        vol,
			Labels:      map[string]string{LabelNode: p.cfg.Hostname},
			Annotations: map[string]string{AnnProvisionedBy: Name},
		},
		Spec: v1.PersistentVolumeSpec{
			Capacity:                      v1.ResourceList{v1.ResourceStorage: size},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: reclaim,
			StorageClassName:              class.Name,
			MountOptions:                  class.MountOptions,
			VolumeMode:                    &fs,
			ClaimRef: &v1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID,
			},
			PersistentVolumeSource: v1.PersistentVolumeSource{
				Local: &v1.LocalVolumeSource{Path: p.cfg.Volumes.Path(vol), FSType: &fsType},
			},
			NodeAffinity: &v1.VolumeNodeAffinity{Required: &v1.NodeSelector{NodeSelectorTerms: []v1.NodeSelectorTerm{{
				MatchExpressions: []v1.NodeSelectorRequirement{{Key: v1.LabelHostname, Operator: v1.NodeSelectorOpIn, Values: []string{p.cfg.Hostname}}},
			}}}},
		},
	}
}

// expand grows the volume of a bound claim whose request outgrew it,
// online, then the PV's capacity, then the claim's status.
func (p *Provisioner) expand(ctx context.Context, c *v1.PersistentVolumeClaim) error {
	pv, err := p.pvs.Get(c.Spec.VolumeName)
	if err != nil || !p.ourPV(pv) || pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID != c.UID {
		return nil
	}
	want := c.Spec.Resources.Requests[v1.ResourceStorage]
	have := pv.Spec.Capacity[v1.ResourceStorage]
	if want.Cmp(have) > 0 {
		class, err := p.classes.Get(pv.Spec.StorageClassName)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if class == nil || class.AllowVolumeExpansion == nil || !*class.AllowVolumeExpansion {
			p.claimEvent(c, v1.EventTypeWarning, eventResizeFailed, "storage class %q does not allow volume expansion", pv.Spec.StorageClassName)
			return nil
		}
		err = p.cfg.Volumes.Expand(ctx, pv.Name, imageSize(want))
		if errors.Is(err, ErrResizePending) {
			p.queue.AddAfter(key{name: c.Namespace + "/" + c.Name}, resizeRetry)
			return p.resizePending(ctx, c, err)
		}
		if err != nil {
			p.claimEvent(c, v1.EventTypeWarning, eventResizeFailed, "expand volume %s to %s: %v", pv.Name, want.String(), err)
			if errors.Is(err, ErrNoSpace) {
				return fmt.Errorf("claim %s/%s: %w", c.Namespace, c.Name, controllerutil.ErrRequeue)
			}
			return fmt.Errorf("claim %s/%s: %w", c.Namespace, c.Name, err)
		}
		pv = pv.DeepCopy()
		pv.Spec.Capacity[v1.ResourceStorage] = want
		if _, err := p.cfg.Client.CoreV1().PersistentVolumes().Update(ctx, pv, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("claim %s/%s: update PV %s: %w", c.Namespace, c.Name, pv.Name, err)
		}
		have = want
		p.claimEvent(c, v1.EventTypeNormal, eventResized, "MountVolume.NodeExpandVolume succeeded for volume %q", pv.Name)
	}
	// The claim's status follows the volume (also after a crash between
	// the PV's update and this one).
	cur := c.Status.Capacity[v1.ResourceStorage]
	if c.Status.Phase != v1.ClaimBound || cur.Cmp(have) >= 0 {
		return nil
	}
	c = c.DeepCopy()
	if c.Status.Capacity == nil {
		c.Status.Capacity = v1.ResourceList{}
	}
	c.Status.Capacity[v1.ResourceStorage] = have
	if c.Status.AllocatedResources != nil {
		c.Status.AllocatedResources[v1.ResourceStorage] = have
	}
	c.Status.AllocatedResourceStatuses = nil
	c.Status.Conditions = nil
	if _, err := p.cfg.Client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("claim %s/%s: update status: %w", c.Namespace, c.Name, err)
	}
	return nil
}

// resizeRetry: how often a volume whose filesystem waits for its pods
// to go is looked at again.
const resizeRetry = 10 * time.Second

// resizePending tells on the claim, as the kubelet does, that the
// filesystem grows when the volume is next mounted.
func (p *Provisioner) resizePending(ctx context.Context, c *v1.PersistentVolumeClaim, cause error) error {
	for _, cond := range c.Status.Conditions {
		if cond.Type == v1.PersistentVolumeClaimFileSystemResizePending && cond.Status == v1.ConditionTrue {
			return nil
		}
	}
	c = c.DeepCopy()
	c.Status.Conditions = append(c.Status.Conditions, v1.PersistentVolumeClaimCondition{
		Type: v1.PersistentVolumeClaimFileSystemResizePending, Status: v1.ConditionTrue,
		LastTransitionTime: metav1.Now(),
		Message:            "Waiting for user to (re-)start a pod to finish file system resize of volume on node.",
	})
	p.claimEvent(c, v1.EventTypeNormal, "FileSystemResizeRequired", "%v", cause)
	if _, err := p.cfg.Client.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("claim %s/%s: update status: %w", c.Namespace, c.Name, err)
	}
	return nil
}

// syncPV mounts a volume whose PV is there (after a restart or reboot),
// and deletes the data and then the PV of a Released volume whose
// reclaim policy is Delete.
func (p *Provisioner) syncPV(ctx context.Context, name string) error {
	pv, err := p.pvs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !p.ourPV(pv) {
		return nil
	}
	if pv.Status.Phase == v1.VolumeReleased && pv.Spec.PersistentVolumeReclaimPolicy == v1.PersistentVolumeReclaimDelete {
		if err := p.cfg.Volumes.Remove(ctx, name); err != nil {
			return fmt.Errorf("delete volume of PV %s: %w", name, err)
		}
		err := p.cfg.Client.CoreV1().PersistentVolumes().Delete(ctx, name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &pv.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete PV %s: %w", name, err)
		}
		p.log.Info("deleted", "pv", name)
		return nil
	}
	if pv.DeletionTimestamp == nil && p.cfg.Volumes.Exists(name) {
		if err := p.cfg.Volumes.Mount(ctx, name); err != nil {
			return fmt.Errorf("mount volume of PV %s: %w", name, err)
		}
	}
	return nil
}

// Sweep removes the volumes that have neither a PV nor a claim of this
// node waiting for one: what a crash between making a volume and its PV,
// or a PV deleted by hand, leaves behind. The informers must have synced.
func (p *Provisioner) Sweep(ctx context.Context) error {
	names, err := p.cfg.Volumes.List()
	if err != nil {
		return err
	}
	pending := map[string]bool{}
	claims, err := p.claims.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, c := range claims {
		if p.ours(c) && c.DeletionTimestamp == nil {
			pending[VolumeName(c)] = true
		}
	}
	var errs []error
	for _, name := range names {
		if _, err := p.pvs.Get(name); err == nil || pending[name] || !strings.HasPrefix(name, "pvc-") {
			continue
		}
		// The lister may lag a PV made just before: ask the server.
		if _, err := p.cfg.Client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		p.log.Info("removing a volume without PV or claim", "volume", name)
		if err := p.cfg.Volumes.Remove(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (p *Provisioner) claimEvent(c *v1.PersistentVolumeClaim, typ, reason, format string, args ...any) {
	if p.recorder != nil {
		p.recorder.Eventf(c, typ, reason, format, args...)
	}
}

// ProcessNext syncs one queued key; tests drive the provisioner with it.
func (p *Provisioner) ProcessNext(ctx context.Context) bool {
	return controllerutil.ProcessNext(ctx, p.log, p.queue, p.sync)
}

// Len is how many keys are queued.
func (p *Provisioner) Len() int { return p.queue.Len() }
