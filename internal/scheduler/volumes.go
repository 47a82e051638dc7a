package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	kcache "k8s.io/client-go/tools/cache"
	storagehelpers "k8s.io/component-helpers/storage/volume"
)

// volumeListers are the scheduler's view of claims, volumes and classes,
// for the VolumeBinding filter.
type volumeListers struct {
	claims  corelisters.PersistentVolumeClaimLister
	volumes corelisters.PersistentVolumeLister
	classes storagelisters.StorageClassLister
}

// podVolumes is what the pod's claims ask of a node, after kube-scheduler's
// VolumeBinding plugin: its PreFilter (missing, deleted, lost or unbound
// Immediate claims make the pod unschedulable everywhere) is podVolumesOf,
// its Filter is fits, its PreBind is bindVolumes.
type podVolumes struct {
	// bound are the node affinities of the volumes of bound claims.
	bound []*nodeSelector
	// missingVolume: a claim is bound to a volume that does not exist.
	missingVolume bool
	// delayed are unbound WaitForFirstConsumer claims: a static volume on
	// the node binds them, or their class's provisioner makes one there.
	delayed []delayedClaim
	// pvs is the snapshot of volumes the static matching reads.
	pvs []*corev1.PersistentVolume
}

type delayedClaim struct {
	claim *corev1.PersistentVolumeClaim
	// selectedNode: a node was chosen already; only it fits.
	selectedNode string
	// provisioner: the class has one (not kubernetes.io/no-provisioner).
	provisioner bool
	// topology is the class's allowedTopologies; nil allows every node.
	topology *nodeSelector
}

// podVolumesOf reads the pod's claims. A non-empty message says why the
// pod fits no node at all; nil podVolumes means the pod has no claim.
func (l *volumeListers) podVolumesOf(pod *corev1.Pod) (*podVolumes, string, error) {
	var v *podVolumes
	immediateUnbound := false
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		if v == nil {
			v = &podVolumes{}
		}
		name := vol.PersistentVolumeClaim.ClaimName
		claim, err := l.claims.PersistentVolumeClaims(pod.Namespace).Get(name)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("persistentvolumeclaim %q not found", name), nil
		}
		if err != nil {
			return nil, "", fmt.Errorf("get claim %s/%s: %w", pod.Namespace, name, err)
		}
		switch {
		case claim.Status.Phase == corev1.ClaimLost:
			return nil, fmt.Sprintf("persistentvolumeclaim %q bound to non-existent persistentvolume %q", claim.Name, claim.Spec.VolumeName), nil
		case claim.DeletionTimestamp != nil:
			return nil, fmt.Sprintf("persistentvolumeclaim %q is being deleted", claim.Name), nil
		}
		if claim.Spec.VolumeName != "" && metav1.HasAnnotation(claim.ObjectMeta, storagehelpers.AnnBindCompleted) {
			pv, err := l.volumes.Get(claim.Spec.VolumeName)
			if apierrors.IsNotFound(err) {
				v.missingVolume = true
				continue
			}
			if err != nil {
				return nil, "", fmt.Errorf("get volume %s: %w", claim.Spec.VolumeName, err)
			}
			if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil {
				v.bound = append(v.bound, compileNodeSelector(na.Required))
			}
			continue
		}
		class, err := l.class(claim)
		if err != nil {
			return nil, "", err
		}
		if class == nil || class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			immediateUnbound = true
			continue
		}
		d := delayedClaim{
			claim:        claim,
			selectedNode: claim.Annotations[storagehelpers.AnnSelectedNode],
			provisioner:  class.Provisioner != storagehelpers.NotSupportedProvisioner,
		}
		if len(class.AllowedTopologies) > 0 {
			d.topology = topologySelector(class.AllowedTopologies)
		}
		v.delayed = append(v.delayed, d)
	}
	if immediateUnbound {
		return nil, "pod has unbound immediate PersistentVolumeClaims", nil
	}
	if v != nil && len(v.delayed) > 0 {
		pvs, err := l.volumes.List(labels.Everything())
		if err != nil {
			return nil, "", err
		}
		v.pvs = pvs
	}
	return v, "", nil
}

// class is the claim's class; nil if it has none or it does not exist (then
// the claim is Immediate, as upstream's IsDelayBindingMode says).
func (l *volumeListers) class(claim *corev1.PersistentVolumeClaim) (*storagev1.StorageClass, error) {
	name := storagehelpers.GetPersistentVolumeClaimClass(claim)
	if name == "" {
		return nil, nil
	}
	class, err := l.classes.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get storage class %q: %w", name, err)
	}
	return class, nil
}

// topologySelector turns allowedTopologies into a node selector: terms
// ORed, each expression an In.
func topologySelector(terms []corev1.TopologySelectorTerm) *nodeSelector {
	ns := &corev1.NodeSelector{}
	for _, t := range terms {
		var term corev1.NodeSelectorTerm
		for _, e := range t.MatchLabelExpressions {
			term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{
				Key: e.Key, Operator: corev1.NodeSelectorOpIn, Values: e.Values,
			})
		}
		ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, term)
	}
	return compileNodeSelector(ns)
}

// fits is the VolumeBinding filter on one node.
func (v *podVolumes) fits(n *nodeInfo, d *diagnosis) bool {
	if v.missingVolume {
		d.add(reasonVolumeMissing)
		return false
	}
	for _, s := range v.bound {
		if !s.matches(n) {
			d.add(reasonVolumeNodeConflict)
			return false
		}
	}
	if len(v.delayed) > 0 {
		if _, ok := v.place(n); !ok {
			d.add(reasonVolumeBindConflict)
			return false
		}
	}
	return true
}

// place decides, for each delayed claim, the static volume it binds to on
// n (nil: provisioned there). ok is false if a claim cannot be satisfied.
func (v *podVolumes) place(n *nodeInfo) ([]*corev1.PersistentVolume, bool) {
	chosen := make([]*corev1.PersistentVolume, len(v.delayed))
	var excluded map[string]*corev1.PersistentVolume
	node := n.node
	if node == nil {
		node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: n.labels}}
	}
	for i, d := range v.delayed {
		if d.selectedNode != "" {
			if d.selectedNode != n.name {
				return nil, false
			}
			continue // being provisioned there
		}
		pv, err := storagehelpers.FindMatchingVolume(d.claim, v.pvs, node, excluded, true, true)
		if err == nil && pv != nil {
			if excluded == nil {
				excluded = map[string]*corev1.PersistentVolume{}
			}
			excluded[pv.Name] = pv
			chosen[i] = pv
			continue
		}
		if !d.provisioner || (d.topology != nil && !d.topology.matches(n)) {
			return nil, false
		}
	}
	return chosen, true
}

// bindVolumes is the PreBind step, run before the pod is bound to node: a
// claim matched with a static volume gets it (the volume's claimRef; the
// PersistentVolume controller finishes the binding), a claim to provision
// gets volume.kubernetes.io/selected-node, which hands it to its
// provisioner. The pod is then bound at once; the node's agent waits for
// the volume before starting containers.
func (s *Scheduler) bindVolumes(ctx context.Context, p *podInfo, node string) error {
	v := p.volumes
	if v == nil || len(v.delayed) == 0 {
		return nil
	}
	s.cache.mu.Lock()
	n := s.cache.nodes[node]
	var chosen []*corev1.PersistentVolume
	ok := n != nil
	if ok {
		chosen, ok = v.place(n)
	}
	s.cache.mu.Unlock()
	if !ok {
		return fmt.Errorf("volumes of pod %s no longer fit node %q", p.key, node)
	}
	for i, d := range v.delayed {
		if pv := chosen[i]; pv != nil {
			next, dirty, err := storagehelpers.GetBindVolumeToClaim(pv, d.claim)
			if err != nil {
				return err
			}
			if dirty {
				if _, err := s.client.CoreV1().PersistentVolumes().Update(ctx, next, metav1.UpdateOptions{}); err != nil {
					return fmt.Errorf("bind volume %s to claim %s/%s: %w", pv.Name, d.claim.Namespace, d.claim.Name, err)
				}
			}
			continue
		}
		if d.selectedNode == node {
			continue
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"annotations":     map[string]string{storagehelpers.AnnSelectedNode: node},
			"resourceVersion": d.claim.ResourceVersion,
		}})
		if err != nil {
			return err
		}
		_, err = s.client.CoreV1().PersistentVolumeClaims(d.claim.Namespace).Patch(ctx, d.claim.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		if err != nil {
			return fmt.Errorf("select node %q for claim %s/%s: %w", node, d.claim.Namespace, d.claim.Name, err)
		}
	}
	return nil
}

// registerVolumes watches claims, volumes and classes: any change may make
// a waiting pod schedulable (a claim bound, a volume created).
func (s *Scheduler) registerVolumes(factory informers.SharedInformerFactory) {
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	s.volumes = volumeListers{claims: claims.Lister(), volumes: volumes.Lister(), classes: classes.Lister()}
	wake := kcache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.queue.moveAll() },
		UpdateFunc: func(_, _ any) { s.queue.moveAll() },
		DeleteFunc: func(any) { s.queue.moveAll() },
	}
	for _, inf := range []kcache.SharedIndexInformer{claims.Informer(), volumes.Informer(), classes.Informer()} {
		reg, err := inf.AddEventHandler(wake)
		if err != nil {
			s.logger.Error("cannot watch volumes", "err", err)
			continue
		}
		s.synced = append(s.synced, reg.HasSynced)
	}
}
