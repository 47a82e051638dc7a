package node

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// leaseState is the lease loop's own: the lease as last written.
type leaseState struct {
	lease *coordinationv1.Lease
}

func (m *Manager) runLease(ctx context.Context) {
	t := m.cfg.Clock.NewTicker(RenewInterval)
	defer t.Stop()
	for {
		if err := m.renewLease(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("lease renewal failed", "node", m.cfg.NodeName, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// renewLease sets the lease's renew time to now, creating the lease if
// need be. It updates the lease it wrote last, without reading it first;
// after a failure it reads it again.
func (m *Manager) renewLease(ctx context.Context) error {
	leases := m.cfg.Client.CoordinationV1().Leases(LeaseNamespace)
	name := m.cfg.NodeName
	now := metav1.NewMicroTime(m.cfg.Clock.Now())
	st := m.lease
	if st.lease == nil {
		l, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			l = &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: LeaseNamespace}}
			m.setLeaseSpec(l, now)
			if l, err = leases.Create(ctx, l, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("create lease %s/%s: %w", LeaseNamespace, name, err)
			}
			st.lease = l
			return nil
		case err != nil:
			return fmt.Errorf("get lease %s/%s: %w", LeaseNamespace, name, err)
		}
		st.lease = l
	}
	l := st.lease.DeepCopy()
	m.setLeaseSpec(l, now)
	updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		st.lease = nil
		return fmt.Errorf("renew lease %s/%s: %w", LeaseNamespace, name, err)
	}
	st.lease = updated
	return nil
}

// setLeaseSpec renews l. Its owner is the Node, as the kubelet does, so
// deleting the node deletes the lease.
func (m *Manager) setLeaseSpec(l *coordinationv1.Lease, now metav1.MicroTime) {
	l.Spec.HolderIdentity = ptr.To(m.cfg.NodeName)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(LeaseDuration.Seconds()))
	l.Spec.RenewTime = &now
	uid := m.uid.Load().(types.UID)
	if uid == "" {
		return
	}
	for _, o := range l.OwnerReferences {
		if o.UID == uid {
			return
		}
	}
	l.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: "v1", Kind: "Node", Name: m.cfg.NodeName, UID: uid,
	}}
}
