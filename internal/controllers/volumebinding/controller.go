// Package volumebinding is the PersistentVolume controller, after
// kube-controller-manager's pkg/controller/volume/persistentvolume: it binds
// PersistentVolumeClaims to PersistentVolumes and keeps both phases true.
//
//   - A claim binds to the best Available volume: same class, a volume mode
//     and access modes that satisfy it (volumes with the fewest extra modes
//     first), labels its selector matches, and of those the smallest
//     capacity that fits. A volume pre-bound to the claim (spec.claimRef
//     with no uid) and a volume the claim names (spec.volumeName) win.
//     Binding writes the volume's claimRef, then its phase Bound, then the
//     claim's volumeName and the annotations pv.kubernetes.io/bind-completed
//     and pv.kubernetes.io/bound-by-controller, then the claim's phase Bound
//     with status.capacity and status.accessModes from the volume. Each step
//     is idempotent, so a failure part way is finished by the next sync.
//   - A claim with no volume is handed to its class's provisioner: the
//     annotations volume.kubernetes.io/storage-provisioner (and the beta
//     one) name it, an ExternalProvisioning event says so, and the
//     provisioner creates a volume pre-bound to the claim (docs/storage.md).
//     A WaitForFirstConsumer class waits for the scheduler's
//     volume.kubernetes.io/selected-node. For an Immediate class of the
//     node-local provisioner wharf.dev/local, the controller itself picks the
//     Ready node with the fewest claims and sets selected-node.
//   - A missing class, an in-tree provisioner (none is built in) or a claim
//     without a class and no volume leave the claim Pending with a Warning
//     event, as upstream. A claim without a class gets the default class as
//     soon as one exists (retroactive default storage class).
//   - A volume whose claim is gone is Released. Retain keeps it so. Delete
//     hands it to the provisioner named by pv.kubernetes.io/provisioned-by,
//     which removes the data and then the PersistentVolume; the controller
//     never deletes a volume itself. A volume Delete cannot be done for (no
//     provisioner, or Recycle, which nothing implements) is Failed with an
//     event.
//   - A bound claim whose volume is gone, or claimed by another, is Lost.
//
// The pvc-protection and pv-protection finalizers are ProtectionController's.
package volumebinding

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// LocalProvisioner is the provisioner every Wharf node runs: it makes a
// volume on the node named by the claim's selected-node annotation.
const LocalProvisioner = "wharf.dev/local"

// key names a claim ("namespace/name") or a volume ("name").
type key struct {
	volume bool
	name   string
}

func (k key) String() string {
	if k.volume {
		return "persistentvolume " + k.name
	}
	return "persistentvolumeclaim " + k.name
}

// Controller binds claims to volumes.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	recorder record.EventRecorder

	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
	nodes   corelisters.NodeLister
	pods    corelisters.PodLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[key]

	mu sync.Mutex
	// written holds the volumes this controller wrote, until the informer
	// catches up, so that the next claim does not pick a volume just taken.
	written map[string]*corev1.PersistentVolume
	// events is the last event sent per claim, so a claim resynced by its
	// own updates does not repeat it.
	events map[types.UID]string
}

// New returns the controller on factory's informers; the caller starts
// factory after New and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder) *Controller {
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	nodes := factory.Core().V1().Nodes()
	pods := factory.Core().V1().Pods()
	c := &Controller{
		logger:   logger.With("controller", "persistentvolume-binder"),
		client:   client,
		recorder: recorder,
		claims:   claims.Lister(),
		volumes:  volumes.Lister(),
		classes:  classes.Lister(),
		nodes:    nodes.Lister(),
		pods:     pods.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "persistentvolume-binder"}),
		written: map[string]*corev1.PersistentVolume{},
		events:  map[types.UID]string{},
	}
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: claims.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onClaim,
			UpdateFunc: func(_, cur any) { c.onClaim(cur) },
			DeleteFunc: c.onClaimDelete,
		}},
		controllerutil.EventHandler{Informer: volumes.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onVolume,
			UpdateFunc: func(_, cur any) { c.onVolume(cur) },
			DeleteFunc: c.onVolumeDelete,
		}},
		// A new class, or a node for a node-local volume, may unblock
		// pending claims.
		controllerutil.EventHandler{Informer: classes.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.enqueuePending() },
			UpdateFunc: func(_, _ any) { c.enqueuePending() },
		}},
		controllerutil.EventHandler{Informer: nodes.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { c.enqueuePending() },
			UpdateFunc: func(old, cur any) {
				if nodeUsable(old.(*corev1.Node)) != nodeUsable(cur.(*corev1.Node)) {
					c.enqueuePending()
				}
			},
		}},
		// Pods only name the claims in WaitForPodScheduled events.
		controllerutil.EventHandler{Informer: pods.Informer(), Handler: cache.ResourceEventHandlerFuncs{}},
	)
	return c
}

// Run binds until ctx is done. It uses one worker whatever workers says,
// as upstream's controller has one claim worker: two claims matched at once
// would pick the same best volume and one of the binds would fail.
func (c *Controller) Run(ctx context.Context, _ int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, 1, c.sync)
}

func (c *Controller) sync(ctx context.Context, k key) error {
	if k.volume {
		return c.syncVolumeKey(ctx, k.name)
	}
	return c.syncClaimKey(ctx, k.name)
}

func (c *Controller) onClaim(obj any) {
	claim, ok := obj.(*corev1.PersistentVolumeClaim)
	if !ok {
		return
	}
	c.queue.Add(key{name: claim.Namespace + "/" + claim.Name})
}

func (c *Controller) onClaimDelete(obj any) {
	claim, ok := controllerutil.DeletedObject[*corev1.PersistentVolumeClaim](obj)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.events, claim.UID)
	c.mu.Unlock()
	// Its volume is Released now.
	if claim.Spec.VolumeName != "" {
		c.queue.Add(key{volume: true, name: claim.Spec.VolumeName})
	}
}

func (c *Controller) onVolume(obj any) {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok {
		return
	}
	c.forgetWritten(pv)
	c.queue.Add(key{volume: true, name: pv.Name})
	// A provisioned volume comes pre-bound: its claim binds now.
	if cr := pv.Spec.ClaimRef; cr != nil {
		c.queue.Add(key{name: cr.Namespace + "/" + cr.Name})
	}
}

func (c *Controller) onVolumeDelete(obj any) {
	pv, ok := controllerutil.DeletedObject[*corev1.PersistentVolume](obj)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.written, pv.Name)
	c.mu.Unlock()
	if cr := pv.Spec.ClaimRef; cr != nil {
		c.queue.Add(key{name: cr.Namespace + "/" + cr.Name})
	}
}

// enqueuePending queues every claim not yet bound.
func (c *Controller) enqueuePending() {
	claims, err := c.claims.List(labels.Everything())
	if err != nil {
		return
	}
	for _, claim := range claims {
		if claim.Spec.VolumeName == "" {
			c.queue.Add(key{name: claim.Namespace + "/" + claim.Name})
		}
	}
}

// volume returns the newest copy of a volume: the informer's, or the one
// this controller wrote last if the informer has not seen it yet.
func (c *Controller) volume(name string) (*corev1.PersistentVolume, error) {
	pv, err := c.volumes.Get(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.written[name]; w != nil && (err != nil || newer(w, pv)) {
		return w, nil
	}
	return pv, err
}

// listVolumes is the informer's volumes with this controller's writes over them.
func (c *Controller) listVolumes() ([]*corev1.PersistentVolume, error) {
	pvs, err := c.volumes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.written) == 0 {
		return pvs, nil
	}
	out := make([]*corev1.PersistentVolume, len(pvs))
	for i, pv := range pvs {
		out[i] = pv
		if w := c.written[pv.Name]; w != nil && newer(w, pv) {
			out[i] = w
		}
	}
	return out, nil
}

func (c *Controller) rememberWritten(pv *corev1.PersistentVolume) {
	c.mu.Lock()
	c.written[pv.Name] = pv
	c.mu.Unlock()
}

// forgetWritten drops a remembered write once the informer has it.
func (c *Controller) forgetWritten(pv *corev1.PersistentVolume) {
	c.mu.Lock()
	if w := c.written[pv.Name]; w != nil && !newer(w, pv) {
		delete(c.written, pv.Name)
	}
	c.mu.Unlock()
}

// newer compares resourceVersions, which Wharf's storage makes etcd
// revisions (integers), as upstream's controller does.
func newer(a, b *corev1.PersistentVolume) bool {
	ra, err1 := strconv.ParseInt(a.ResourceVersion, 10, 64)
	rb, err2 := strconv.ParseInt(b.ResourceVersion, 10, 64)
	return err1 == nil && err2 == nil && ra > rb
}

// event sends an event about a claim unless it is the last one sent for it.
func (c *Controller) event(claim *corev1.PersistentVolumeClaim, typ, reason, message string) {
	c.mu.Lock()
	last := c.events[claim.UID]
	c.events[claim.UID] = reason + "\x00" + message
	c.mu.Unlock()
	if last == reason+"\x00"+message || c.recorder == nil {
		return
	}
	c.recorder.Event(claim, typ, reason, message)
}

func (c *Controller) volumeEvent(pv *corev1.PersistentVolume, typ, reason, message string) {
	if c.recorder != nil {
		c.recorder.Event(pv, typ, reason, message)
	}
}

func nodeUsable(n *corev1.Node) bool {
	if n.Spec.Unschedulable || n.DeletionTimestamp != nil {
		return false
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// matchTopology reports whether a node's labels satisfy a class's
// allowedTopologies (none allows every node): the terms are ORed, the
// expressions of a term ANDed, each an In.
func matchTopology(terms []corev1.TopologySelectorTerm, nodeLabels map[string]string) bool {
	if len(terms) == 0 {
		return true
	}
	for _, t := range terms {
		ok := true
		for _, e := range t.MatchLabelExpressions {
			v, has := nodeLabels[e.Key]
			if !has || !slices.Contains(e.Values, v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func isDelayBinding(class *storagev1.StorageClass) bool {
	return class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}
