package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"wharf.dev/wharf/internal/wire"
)

// ErrNotCaughtUp: a learner cannot be promoted before it has the leader's log.
var ErrNotCaughtUp = errors.New("learner has not caught up with the leader yet")

// ErrJoinInProgress: another member was added and has not started yet.
var ErrJoinInProgress = errors.New("another etcd member is joining")

// Status is the member's own view: it needs no quorum, so a survivor of a
// lost quorum still reports how much it holds.
func (e *Embedded) Status() wire.EtcdStatus {
	srv := e.etcd.Server
	st := wire.EtcdStatus{
		Name:         e.etcd.Config().Name,
		ID:           srv.MemberID().String(),
		Learner:      srv.IsLearner(),
		Revision:     srv.KV().Rev(),
		AppliedIndex: srv.AppliedIndex(),
		Term:         srv.Term(),
	}
	if lead := srv.Leader(); lead != 0 {
		st.Leader = lead.String()
	}
	for _, m := range srv.Cluster().Members() {
		st.Members = append(st.Members, wire.EtcdMember{ID: m.ID.String(), Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.IsLearner})
	}
	slices.SortFunc(st.Members, func(a, b wire.EtcdMember) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// IsLeader: this member leads its cluster now.
func (e *Embedded) IsLeader() bool {
	srv := e.etcd.Server
	return srv.Leader() == srv.MemberID()
}

// LeaderChanged is closed at the next change of leader (a new channel
// each time).
func (e *Embedded) LeaderChanged() <-chan struct{} { return e.etcd.Server.LeaderChangedNotify() }

// AddLearner adds a member as a learner, first removing a member of the
// same name or peer URL (a master made again on a fresh disk), and returns
// the initial-cluster string the new member starts with. A member already
// there as an unstarted learner with this name and URL is kept: its host
// retries after a crash.
func AddLearner(ctx context.Context, c *clientv3.Client, name, peerURL string) (wire.EtcdJoinResponse, error) {
	list, err := c.MemberList(ctx)
	if err != nil {
		return wire.EtcdJoinResponse{}, fmt.Errorf("list etcd members: %w", err)
	}
	members := list.Members
	var self uint64
	for _, m := range members {
		same := m.Name == name || slices.Contains(m.PeerURLs, peerURL)
		if !same {
			if m.Name == "" {
				// One joins at a time: a member starts with the list as
				// it was added, and etcd refuses a list that misses one.
				return wire.EtcdJoinResponse{}, fmt.Errorf("%w: member %s", ErrJoinInProgress, types.ID(m.ID))
			}
			continue
		}
		if m.IsLearner && m.Name == "" && slices.Equal(m.PeerURLs, []string{peerURL}) {
			self = m.ID
			continue
		}
		if _, err := c.MemberRemove(ctx, m.ID); err != nil {
			return wire.EtcdJoinResponse{}, fmt.Errorf("remove old etcd member %s (%s): %w", m.Name, types.ID(m.ID), err)
		}
	}
	if self == 0 {
		resp, err := c.MemberAddAsLearner(ctx, []string{peerURL})
		if err != nil {
			return wire.EtcdJoinResponse{}, fmt.Errorf("add etcd member %s at %s: %w", name, peerURL, err)
		}
		self, members = resp.Member.ID, resp.Members
	} else if list, err = c.MemberList(ctx); err == nil {
		members = list.Members
	} else {
		return wire.EtcdJoinResponse{}, fmt.Errorf("list etcd members: %w", err)
	}
	var parts []string
	for _, m := range members {
		n := m.Name
		if m.ID == self {
			n = name
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, n+"="+u)
		}
	}
	slices.Sort(parts)
	return wire.EtcdJoinResponse{InitialCluster: strings.Join(parts, ","), ID: types.ID(self).String()}, nil
}

// Promote makes the learner of that name a voting member. ErrNotCaughtUp
// while it catches up; promoting a voting member again is a no-op.
func Promote(ctx context.Context, c *clientv3.Client, name string) error {
	list, err := c.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("list etcd members: %w", err)
	}
	for _, m := range list.Members {
		if m.Name != name {
			continue
		}
		if !m.IsLearner {
			return nil
		}
		_, err := c.MemberPromote(ctx, m.ID)
		if errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || errors.Is(err, rpctypes.ErrGRPCLearnerNotReady) {
			return ErrNotCaughtUp
		}
		if err != nil {
			return fmt.Errorf("promote etcd member %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("no etcd member named %q", name)
}
