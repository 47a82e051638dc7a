// Package volumeprotection is Kubernetes' pvc-protection and pv-protection
// controllers in one: admission puts the finalizers kubernetes.io/pvc-protection
// on every new claim and kubernetes.io/pv-protection on every new volume;
// this controller removes them from a deleted claim once no scheduled pod
// names it, and from a deleted volume once it is not Bound. Objects that
// predate admission get their finalizer here.
package volumeprotection

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// The finalizers, as Kubernetes names them.
const (
	PVCFinalizer = "kubernetes.io/pvc-protection"
	PVFinalizer  = "kubernetes.io/pv-protection"
)

// key is "namespace/name" of a claim, or the name of a volume.
type key struct {
	volume bool
	name   string
}

// Controller keeps claims used by pods and bound volumes from going.
type Controller struct {
	logger  *slog.Logger
	client  kubernetes.Interface
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	pods    corelisters.PodLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[key]
}

// New returns the controller on factory's informers; the caller starts
// factory after New and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	pods := factory.Core().V1().Pods()
	c := &Controller{
		logger:  logger.With("controller", "volume-protection"),
		client:  client,
		claims:  claims.Lister(),
		volumes: volumes.Lister(),
		pods:    pods.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[key](),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "volume-protection"}),
	}
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: claims.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onClaim,
			UpdateFunc: func(_, cur any) { c.onClaim(cur) },
		}},
		controllerutil.EventHandler{Informer: volumes.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.onVolume,
			UpdateFunc: func(_, cur any) { c.onVolume(cur) },
		}},
		// A pod that goes (or is unscheduled) may free the claims it names.
		controllerutil.EventHandler{Informer: pods.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(old, cur any) { c.onPod(old); c.onPod(cur) },
			DeleteFunc: c.onPod,
		}},
	)
	return c
}

// Run syncs with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync)
}

func (c *Controller) onClaim(obj any) {
	if claim, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		c.queue.Add(key{name: claim.Namespace + "/" + claim.Name})
	}
}

func (c *Controller) onVolume(obj any) {
	if pv, ok := obj.(*corev1.PersistentVolume); ok {
		c.queue.Add(key{volume: true, name: pv.Name})
	}
}

func (c *Controller) onPod(obj any) {
	pod, ok := controllerutil.DeletedObject[*corev1.Pod](obj)
	if !ok {
		return
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			c.queue.Add(key{name: pod.Namespace + "/" + v.PersistentVolumeClaim.ClaimName})
		}
	}
}

func (c *Controller) sync(ctx context.Context, k key) error {
	if k.volume {
		return c.syncVolume(ctx, k.name)
	}
	return c.syncClaim(ctx, k.name)
}

func (c *Controller) syncClaim(ctx context.Context, k string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("claim key %q: %w", k, err)
	}
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	has := slices.Contains(claim.Finalizers, PVCFinalizer)
	switch {
	case claim.DeletionTimestamp == nil && !has:
		return c.setClaimFinalizer(ctx, claim, true)
	case claim.DeletionTimestamp != nil && has:
		used, err := c.claimUsed(ctx, claim)
		if err != nil || used {
			if used {
				c.logger.Debug("keeping a claim a pod uses", "claim", k)
			}
			return err
		}
		return c.setClaimFinalizer(ctx, claim, false)
	}
	return nil
}

// claimUsed: a scheduled pod names the claim, whatever its phase, as
// upstream (the node may still have it mounted). The informer is asked
// first, then the API, since a pod may be newer than the cache.
func (c *Controller) claimUsed(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	pods, err := c.pods.Pods(claim.Namespace).List(labels.Everything())
	if err != nil {
		return false, err
	}
	if slices.ContainsFunc(pods, func(p *corev1.Pod) bool { return podUses(p, claim.Name) }) {
		return true, nil
	}
	list, err := c.client.CoreV1().Pods(claim.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("list pods using claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	for i := range list.Items {
		if podUses(&list.Items[i], claim.Name) {
			return true, nil
		}
	}
	return false, nil
}

func podUses(pod *corev1.Pod, claim string) bool {
	if pod.Spec.NodeName == "" {
		return false
	}
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
			return true
		}
	}
	return false
}

func (c *Controller) setClaimFinalizer(ctx context.Context, claim *corev1.PersistentVolumeClaim, add bool) error {
	next := claim.DeepCopy()
	next.Finalizers = withFinalizer(claim.Finalizers, PVCFinalizer, add)
	_, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update finalizers of claim %s/%s: %w", claim.Namespace, claim.Name, err)
	}
	if !add {
		c.logger.Info("claim no longer used, its protection removed", "claim", claim.Namespace+"/"+claim.Name)
	}
	return nil
}

func (c *Controller) syncVolume(ctx context.Context, name string) error {
	pv, err := c.volumes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	has := slices.Contains(pv.Finalizers, PVFinalizer)
	var add bool
	switch {
	case pv.DeletionTimestamp == nil && !has:
		add = true
	case pv.DeletionTimestamp != nil && has && pv.Status.Phase != corev1.VolumeBound:
		add = false
	default:
		return nil
	}
	next := pv.DeepCopy()
	next.Finalizers = withFinalizer(pv.Finalizers, PVFinalizer, add)
	if _, err := c.client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update finalizers of volume %s: %w", name, err)
	}
	return nil
}

func withFinalizer(fs []string, f string, add bool) []string {
	out := slices.DeleteFunc(slices.Clone(fs), func(s string) bool { return s == f })
	if add {
		out = append(out, f)
	}
	return out
}
