package node

import (
	"context"
	"fmt"
	"runtime"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MaxPods is the pod capacity, the kubelet's default.
const MaxPods = 110

// criVersion is the CRI API version the kubelet asks Version with.
const criVersion = "0.1.0"

// sync computes the node's status and writes it if it changed or the
// heartbeat is due, registering the node first if need be.
func (m *Manager) sync(ctx context.Context) error {
	if cidr := m.podCIDR(); cidr != "" && (cidr != m.netCIDR || m.netErr != nil) && m.cfg.Network != nil {
		m.netCIDR, m.netErr = cidr, m.cfg.Network(ctx, cidr)
		if m.netErr != nil {
			m.log.Warn("pod network not configured", "podCIDR", cidr, "err", m.netErr)
		} else {
			m.log.Info("pod network configured", "podCIDR", cidr)
		}
	}
	rtErr := m.checkRuntime(ctx)
	now := m.cfg.Clock.Now()
	if m.node == nil {
		return m.register(ctx, m.status(now, rtErr, nil))
	}
	want := m.status(now, rtErr, m.node.Status.Conditions)
	if sameStatus(m.node.Status, want) && now.Sub(m.lastWrite) < HeartbeatInterval {
		return nil
	}
	nodes := m.cfg.Client.CoreV1().Nodes()
	if seen := m.seenCIDR.Load().(string); seen != "" && seen != m.node.Spec.PodCIDR {
		// The watch saw a newer Node: writing on ours would only conflict.
		if fresh, err := nodes.Get(ctx, m.cfg.NodeName, metav1.GetOptions{}); err == nil {
			m.node = fresh
		}
	}
	n := m.node.DeepCopy()
	n.Status = want
	updated, err := nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// Changed meanwhile (e.g. a pod CIDR assigned): write on the
		// current version; a further change waits for the next sync.
		if n, err = nodes.Get(ctx, m.cfg.NodeName, metav1.GetOptions{}); err == nil {
			m.node = n
			n = n.DeepCopy()
			n.Status = want
			updated, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		// Deleted (by an operator): register again at the next sync.
		m.node = nil
		return fmt.Errorf("node %q is gone, registering again: %w", m.cfg.NodeName, err)
	case err != nil:
		return fmt.Errorf("update status of node %q: %w", m.cfg.NodeName, err)
	}
	m.node, m.lastWrite = updated, now
	return nil
}

// register creates the Node, or adopts the existing one (a restarted
// agent): its spec (pod CIDR, taints) stays, labels are ours.
func (m *Manager) register(ctx context.Context, status corev1.NodeStatus) error {
	nodes := m.cfg.Client.CoreV1().Nodes()
	want := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: m.cfg.NodeName, Labels: m.labels()}, Status: status}
	n, err := nodes.Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if n, err = nodes.Get(ctx, m.cfg.NodeName, metav1.GetOptions{}); err == nil {
			n = n.DeepCopy()
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			for k, v := range want.Labels {
				n.Labels[k] = v
			}
			if n, err = nodes.Update(ctx, n, metav1.UpdateOptions{}); err == nil {
				m.node = n // the status is written by the next sync
				m.uid.Store(n.UID)
				m.log.Info("node registered again", "node", m.cfg.NodeName, "podCIDR", n.Spec.PodCIDR)
				return m.sync(ctx)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("register node %q: %w", m.cfg.NodeName, err)
	}
	m.node, m.lastWrite = n, m.cfg.Clock.Now()
	m.uid.Store(n.UID)
	m.log.Info("node registered", "node", m.cfg.NodeName)
	return nil
}

func (m *Manager) labels() map[string]string {
	return map[string]string{
		corev1.LabelHostname:      m.cfg.Hostname,
		corev1.LabelOSStable:      runtime.GOOS,
		corev1.LabelArchStable:    runtime.GOARCH,
		"beta.kubernetes.io/os":   runtime.GOOS,
		"beta.kubernetes.io/arch": runtime.GOARCH,
	}
}

// checkRuntime asks the runtime its version: an answer means it is up.
func (m *Manager) checkRuntime(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := m.cfg.Runtime.Version(ctx, criVersion)
	if err != nil {
		return err
	}
	m.runtime = v.RuntimeName + "://" + v.RuntimeVersion
	return nil
}

// status is the node status to report at now; old are the conditions
// reported before, whose transition times carry over.
func (m *Manager) status(now time.Time, rtErr error, old []corev1.NodeCondition) corev1.NodeStatus {
	sys := m.cfg.System
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(sys.CPUs, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(sys.MemoryBytes, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(MaxPods, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(sys.EphemeralStorageBytes, resource.BinarySI),
	}
	addrs := []corev1.NodeAddress{}
	if m.cfg.NodeIP != "" {
		addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: m.cfg.NodeIP})
	}
	addrs = append(addrs, corev1.NodeAddress{Type: corev1.NodeHostName, Address: m.cfg.Hostname})
	ready, reason, msg := corev1.ConditionTrue, "KubeletReady", "wharf agent is posting ready status"
	switch {
	case rtErr != nil:
		ready, reason, msg = corev1.ConditionFalse, "KubeletNotReady", "container runtime is down: "+rtErr.Error()
	case m.podCIDR() == "":
		ready, reason, msg = corev1.ConditionFalse, "KubeletNotReady", "network not ready: waiting for the control plane to assign a pod CIDR"
	case m.netErr != nil:
		ready, reason, msg = corev1.ConditionFalse, "KubeletNotReady", "network not ready: "+m.netErr.Error()
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
			LastHeartbeatTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
		for _, o := range old {
			if o.Type == t && o.Status == s {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	return corev1.NodeStatus{
		Capacity:        capacity,
		Allocatable:     capacity.DeepCopy(),
		Addresses:       addrs,
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: m.cfg.Port}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: sys.MachineID, SystemUUID: sys.SystemUUID, BootID: sys.BootID,
			KernelVersion: sys.KernelVersion, OSImage: sys.OSImage,
			ContainerRuntimeVersion: m.runtime, KubeletVersion: m.cfg.Version,
			OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
		},
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "agent has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "agent has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "agent has sufficient PID available"),
			cond(corev1.NodeReady, ready, reason, msg),
		},
	}
}

// sameStatus compares statuses but for heartbeat times.
func sameStatus(a, b corev1.NodeStatus) bool {
	strip := func(s corev1.NodeStatus) corev1.NodeStatus {
		s = *s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		// Not reported by the agent: whatever the server holds is fine.
		s.Images, s.VolumesInUse, s.VolumesAttached, s.Phase = nil, nil, nil, ""
		return s
	}
	return apiequality.Semantic.DeepEqual(strip(a), strip(b))
}
