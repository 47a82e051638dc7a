package volumebinding

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// Event reasons, as upstream's pkg/controller/volume/events.
const (
	reasonFailedBinding        = "FailedBinding"
	reasonVolumeMismatch       = "VolumeMismatch"
	reasonProvisioningFailed   = "ProvisioningFailed"
	reasonExternalProvisioning = "ExternalProvisioning"
	reasonWaitForFirstConsumer = "WaitForFirstConsumer"
	reasonWaitForPodScheduled  = "WaitForPodScheduled"
	reasonClaimLost            = "ClaimLost"
	reasonClaimMisbound        = "ClaimMisbound"
)

// Annotations of the default class (DefaultStorageClass admission reads them too).
const (
	annIsDefaultClass     = "storageclass.kubernetes.io/is-default-class"
	annBetaIsDefaultClass = "storageclass.beta.kubernetes.io/is-default-class"
)

func (c *Controller) syncClaimKey(ctx context.Context, k string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(k)
	if err != nil {
		return fmt.Errorf("claim key %q: %w", k, err)
	}
	claim, err := c.claims.PersistentVolumeClaims(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get claim %s: %w", k, err)
	}
	return c.syncClaim(ctx, claim)
}

// syncClaim is upstream's syncClaim: a claim that has been bound once
// (bind-completed) is checked, any other is bound if it can be.
func (c *Controller) syncClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if metav1.HasAnnotation(claim.ObjectMeta, storagehelpers.AnnBindCompleted) {
		return c.syncBoundClaim(ctx, claim)
	}
	return c.syncUnboundClaim(ctx, claim)
}

func (c *Controller) syncBoundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName == "" {
		return c.claimLost(ctx, claim, reasonClaimLost, "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
	}
	pv, err := c.volume(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		return c.claimLost(ctx, claim, reasonClaimLost, "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
	}
	if err != nil {
		return err
	}
	if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.UID == claim.UID {
		// Unbound volume (or an informer behind): bind again. Bound: bind
		// writes nothing when all is set.
		return c.bind(ctx, pv, claim)
	}
	return c.claimLost(ctx, claim, reasonClaimMisbound, "Two claims are bound to the same volume, this one is bound incorrectly")
}

func (c *Controller) claimLost(ctx context.Context, claim *corev1.PersistentVolumeClaim, reason, message string) error {
	if claim.Status.Phase == corev1.ClaimLost {
		return nil
	}
	if _, err := c.updateClaimStatus(ctx, claim, corev1.ClaimLost, nil); err != nil {
		return err
	}
	c.event(claim, corev1.EventTypeWarning, reason, message)
	return nil
}

func (c *Controller) syncUnboundClaim(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	if claim.Spec.VolumeName != "" {
		return c.syncClaimNamingVolume(ctx, claim)
	}
	class, classErr := c.class(claim)
	delay := isDelayBinding(class)
	pv, err := c.findBestMatch(claim, delay)
	if err != nil {
		return err
	}
	if pv != nil {
		return c.bind(ctx, pv, claim)
	}
	// No volume: provision one if the claim's class can.
	if updated, err := c.assignDefaultClass(ctx, claim); err != nil || updated {
		return err // the update resyncs the claim
	}
	switch {
	case delay && !storagehelpers.IsDelayBindingProvisioning(claim):
		c.waitForFirstConsumer(claim)
	case storagehelpers.GetPersistentVolumeClaimClass(claim) != "":
		return c.provision(ctx, claim, class, classErr)
	default:
		c.event(claim, corev1.EventTypeNormal, reasonFailedBinding, "no persistent volumes available for this claim and no storage class is set")
	}
	_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
	return err
}

// syncClaimNamingVolume binds a claim whose spec.volumeName names a volume.
func (c *Controller) syncClaimNamingVolume(ctx context.Context, claim *corev1.PersistentVolumeClaim) error {
	pv, err := c.volume(claim.Spec.VolumeName)
	if apierrors.IsNotFound(err) {
		// It may be created later.
		_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
		return err
	}
	if err != nil {
		return err
	}
	switch {
	case pv.Spec.ClaimRef == nil:
		if err := checkVolumeSatisfiesClaim(pv, claim); err != nil {
			c.event(claim, corev1.EventTypeWarning, reasonVolumeMismatch, fmt.Sprintf("Cannot bind to requested volume %q: %s", pv.Name, err))
			_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
			return err
		}
		return c.bind(ctx, pv, claim)
	case storagehelpers.IsVolumeBoundToClaim(pv, claim):
		return c.bind(ctx, pv, claim)
	case !metav1.HasAnnotation(claim.ObjectMeta, storagehelpers.AnnBoundByController):
		c.event(claim, corev1.EventTypeWarning, reasonFailedBinding, fmt.Sprintf("volume %q already bound to a different claim.", pv.Name))
		_, err = c.updateClaimStatus(ctx, claim, corev1.ClaimPending, nil)
		return err
	default:
		c.event(claim, corev1.EventTypeWarning, reasonFailedBinding, fmt.Sprintf("volume %q already bound to a different claim.", pv.Name))
		return fmt.Errorf("invalid binding of claim %s/%s to volume %q: the volume is claimed by %s/%s",
			claim.Namespace, claim.Name, pv.Name, pv.Spec.ClaimRef.Namespace, pv.Spec.ClaimRef.Name)
	}
}

// checkVolumeSatisfiesClaim is what a volume named by a claim must meet.
func checkVolumeSatisfiesClaim(pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	want := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	have := pv.Spec.Capacity[corev1.ResourceStorage]
	if have.Cmp(want) < 0 {
		return fmt.Errorf("requested PV is too small")
	}
	if storagehelpers.GetPersistentVolumeClass(pv) != storagehelpers.GetPersistentVolumeClaimClass(claim) {
		return fmt.Errorf("storageClassName does not match")
	}
	if storagehelpers.CheckVolumeModeMismatches(&claim.Spec, &pv.Spec) {
		return fmt.Errorf("incompatible volumeMode")
	}
	if !storagehelpers.CheckAccessModes(claim, pv) {
		return fmt.Errorf("incompatible accessMode")
	}
	return nil
}

// findBestMatch is upstream's findByClaim: volumes whose access modes
// include the claim's are tried by their number of modes, fewest first, and
// within a set FindMatchingVolume picks the pre-bound one or the smallest
// that fits. With delay (WaitForFirstConsumer) only pre-bound volumes
// match: the scheduler chooses the others, knowing the node.
func (c *Controller) findBestMatch(claim *corev1.PersistentVolumeClaim, delay bool) (*corev1.PersistentVolume, error) {
	pvs, err := c.listVolumes()
	if err != nil {
		return nil, err
	}
	bySize := map[int][]*corev1.PersistentVolume{}
	for _, pv := range pvs {
		if storagehelpers.CheckAccessModes(claim, pv) {
			n := len(pv.Spec.AccessModes)
			bySize[n] = append(bySize[n], pv)
		}
	}
	sizes := make([]int, 0, len(bySize))
	for n := range bySize {
		sizes = append(sizes, n)
	}
	sort.Ints(sizes)
	for _, n := range sizes {
		pv, err := storagehelpers.FindMatchingVolume(claim, bySize[n], nil, nil, delay, true)
		if err != nil {
			return nil, fmt.Errorf("match volumes for claim %s/%s: %w", claim.Namespace, claim.Name, err)
		}
		if pv != nil {
			return pv, nil
		}
	}
	return nil, nil
}

// class returns the claim's StorageClass; nil with no class, and nil with
// a NotFound error for a class that does not exist.
func (c *Controller) class(claim *corev1.PersistentVolumeClaim) (*storagev1.StorageClass, error) {
	name := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if name == "" {
		return nil, nil
	}
	class, err := c.classes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(storagev1.Resource("storageclass"), name)
	}
	return class, err
}

// assignDefaultClass gives a claim created without a class, before any
// class was default, the default class now (upstream's retroactive default).
func (c *Controller) assignDefaultClass(ctx context.Context, claim *corev1.PersistentVolumeClaim) (bool, error) {
	if storagehelpers.PersistentVolumeClaimHasClass(claim) {
		return false, nil
	}
	classes, err := c.classes.List(labels.Everything())
	if err != nil {
		return false, err
	}
	def := DefaultClass(classes)
	if def == nil {
		return false, nil
	}
	next := claim.DeepCopy()
	next.Spec.StorageClassName = &def.Name
	if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		return false, fmt.Errorf("set default class %q on claim %s/%s: %w", def.Name, claim.Namespace, claim.Name, err)
	}
	c.logger.Info("assigned the default storage class to a claim", "claim", claim.Namespace+"/"+claim.Name, "storageClass", def.Name)
	return true, nil
}

// DefaultClass is the default StorageClass among classes, as upstream
// chooses it: of those annotated default, the newest, then by name.
func DefaultClass(classes []*storagev1.StorageClass) *storagev1.StorageClass {
	var defs []*storagev1.StorageClass
	for _, sc := range classes {
		if sc.Annotations[annIsDefaultClass] == "true" || sc.Annotations[annBetaIsDefaultClass] == "true" {
			defs = append(defs, sc)
		}
	}
	if len(defs) == 0 {
		return nil
	}
	sort.Slice(defs, func(i, j int) bool {
		ti, tj := defs[i].CreationTimestamp.UnixNano(), defs[j].CreationTimestamp.UnixNano()
		if ti == tj {
			return defs[i].Name < defs[j].Name
		}
		return ti > tj
	})
	return defs[0]
}

// waitForFirstConsumer tells why a WaitForFirstConsumer claim is Pending.
func (c *Controller) waitForFirstConsumer(claim *corev1.PersistentVolumeClaim) {
	reason, message := reasonWaitForFirstConsumer, "waiting for first consumer to be created before binding"
	if names := c.unscheduledPodsUsing(claim); len(names) == 1 {
		reason, message = reasonWaitForPodScheduled, fmt.Sprintf("waiting for pod %s to be scheduled", names[0])
	} else if len(names) > 1 {
		reason, message = reasonWaitForPodScheduled, fmt.Sprintf("waiting for pods %s to be scheduled", strings.Join(names, ","))
	}
	c.event(claim, corev1.EventTypeNormal, reason, message)
}

func (c *Controller) unscheduledPodsUsing(claim *corev1.PersistentVolumeClaim) []string {
	pods, err := c.pods.Pods(claim.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var names []string
	for _, pod := range pods {
		if pod.Spec.NodeName != "" {
			continue
		}
		for _, v := range pod.Spec.Volumes {
			if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim.Name {
				names = append(names, pod.Name)
				break
			}
		}
	}
	sort.Strings(names)
	return names
}

// provision hands the claim to its class's provisioner (upstream's
// provisionClaimOperationExternal): Wharf has no in-tree provisioner.
func (c *Controller) provision(ctx context.Context, claim *corev1.PersistentVolumeClaim, class *storagev1.StorageClass, classErr error) error {
	if classErr != nil {
		if apierrors.IsNotFound(classErr) {
			c.event(claim, corev1.EventTypeWarning, reasonProvisioningFailed, classErr.Error())
			return nil // the class's creation resyncs the claim
		}
		return classErr
	}
	if strings.HasPrefix(class.Provisioner, "kubernetes.io/") {
		c.event(claim, corev1.EventTypeWarning, reasonProvisioningFailed, "no volume plugin matched name: "+class.Provisioner)
		return nil
	}
	next := claim.DeepCopy()
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[storagehelpers.AnnStorageProvisioner] = class.Provisioner
	next.Annotations[storagehelpers.AnnBetaStorageProvisioner] = class.Provisioner
	if class.Provisioner == LocalProvisioner && !storagehelpers.IsDelayBindingProvisioning(claim) {
		// Node-local volumes need a node even for Immediate classes.
		node, err := c.pickNode(class)
		if err != nil {
			return err
		}
		if node == "" {
			c.event(claim, corev1.EventTypeWarning, reasonProvisioningFailed,
				fmt.Sprintf("no ready node to provision a %s volume on", LocalProvisioner))
			return nil // a node becoming Ready resyncs the claim
		}
		next.Annotations[storagehelpers.AnnSelectedNode] = node
	}
	if !equalAnnotations(claim.Annotations, next.Annotations) {
		if _, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("hand claim %s/%s to provisioner %q: %w", claim.Namespace, claim.Name, class.Provisioner, err)
		}
	}
	c.event(next, corev1.EventTypeNormal, reasonExternalProvisioning, fmt.Sprintf("Waiting for a volume to be created either by the external provisioner '%s' "+
		"or manually by the system administrator. If volume creation is delayed, please verify that "+
		"the provisioner is running and correctly registered.", class.Provisioner))
	return nil
}

func equalAnnotations(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// pickNode chooses where an Immediate node-local claim is provisioned: the
// usable node (Ready, schedulable, in the class's allowed topologies) that
// holds the fewest claims, then by name. "" when there is none.
func (c *Controller) pickNode(class *storagev1.StorageClass) (string, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return "", err
	}
	claims, err := c.claims.List(labels.Everything())
	if err != nil {
		return "", err
	}
	count := map[string]int{}
	for _, cl := range claims {
		if n := cl.Annotations[storagehelpers.AnnSelectedNode]; n != "" {
			count[n]++
		}
	}
	best, bestCount := "", 0
	for _, n := range nodes {
		if !nodeUsable(n) || !matchTopology(class.AllowedTopologies, n.Labels) {
			continue
		}
		if k := count[n.Name]; best == "" || k < bestCount || (k == bestCount && n.Name < best) {
			best, bestCount = n.Name, k
		}
	}
	return best, nil
}

// bind is upstream's bind: the volume's claimRef, its phase, the claim's
// volumeName and annotations, its phase. Every step writes only what
// differs.
func (c *Controller) bind(ctx context.Context, pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) error {
	pv, err := c.bindVolumeToClaim(ctx, pv, claim)
	if err != nil {
		return err
	}
	if pv, err = c.updateVolumePhase(ctx, pv, corev1.VolumeBound, ""); err != nil {
		return err
	}
	if claim, err = c.bindClaimToVolume(ctx, claim, pv); err != nil {
		return err
	}
	if _, err = c.updateClaimStatus(ctx, claim, corev1.ClaimBound, pv); err != nil {
		return err
	}
	return nil
}

func (c *Controller) bindVolumeToClaim(ctx context.Context, pv *corev1.PersistentVolume, claim *corev1.PersistentVolumeClaim) (*corev1.PersistentVolume, error) {
	next, dirty, err := storagehelpers.GetBindVolumeToClaim(pv, claim)
	if err != nil || !dirty {
		return pv, err
	}
	out, err := c.client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("bind volume %s to claim %s/%s: %w", pv.Name, claim.Namespace, claim.Name, err)
	}
	c.rememberWritten(out)
	return out, nil
}

func (c *Controller) bindClaimToVolume(ctx context.Context, claim *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	next := claim.DeepCopy()
	dirty := false
	if claim.Spec.VolumeName != pv.Name {
		next.Spec.VolumeName = pv.Name
		if !metav1.HasAnnotation(next.ObjectMeta, storagehelpers.AnnBoundByController) {
			metav1.SetMetaDataAnnotation(&next.ObjectMeta, storagehelpers.AnnBoundByController, "yes")
		}
		dirty = true
	}
	if !metav1.HasAnnotation(next.ObjectMeta, storagehelpers.AnnBindCompleted) {
		metav1.SetMetaDataAnnotation(&next.ObjectMeta, storagehelpers.AnnBindCompleted, "yes")
		dirty = true
	}
	if !dirty {
		return claim, nil
	}
	out, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("bind claim %s/%s to volume %s: %w", claim.Namespace, claim.Name, pv.Name, err)
	}
	return out, nil
}

// updateClaimStatus sets the claim's phase and, from the volume (nil: none),
// its capacity and access modes.
func (c *Controller) updateClaimStatus(ctx context.Context, claim *corev1.PersistentVolumeClaim, phase corev1.PersistentVolumeClaimPhase, pv *corev1.PersistentVolume) (*corev1.PersistentVolumeClaim, error) {
	next := claim.DeepCopy()
	dirty := false
	if claim.Status.Phase != phase {
		next.Status.Phase = phase
		dirty = true
	}
	if pv == nil {
		if claim.Status.AccessModes != nil || claim.Status.Capacity != nil {
			next.Status.AccessModes, next.Status.Capacity = nil, nil
			dirty = true
		}
	} else {
		if !sameModes(claim.Status.AccessModes, pv.Spec.AccessModes) {
			next.Status.AccessModes = pv.Spec.AccessModes
			dirty = true
		}
		if want, ok := pv.Spec.Capacity[corev1.ResourceStorage]; ok {
			if have, ok := claim.Status.Capacity[corev1.ResourceStorage]; !ok || have.Cmp(want) != 0 {
				next.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: want}
				dirty = true
			}
		}
	}
	if !dirty {
		return claim, nil
	}
	out, err := c.client.CoreV1().PersistentVolumeClaims(claim.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("set claim %s/%s %s: %w", claim.Namespace, claim.Name, phase, err)
	}
	return out, nil
}

func sameModes(a, b []corev1.PersistentVolumeAccessMode) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
