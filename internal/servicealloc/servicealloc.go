// Package servicealloc reserves services' cluster IPs and node ports in
// etcd, so that several API servers sharing one etcd never hand out the
// same address or port.
//
// Each address or port in use has a key of its own,
// /wharf/allocations/<range>/<value>, whose value names the service
// holding it ("<uid> <namespace>/<name>"). A reservation is an etcd
// create-only transaction (create revision = 0): of two servers picking
// the same value at once exactly one wins and the other picks again. This
// is Kubernetes 1.33's design (one IPAddress object per allocated
// address) rather than its older one (a bitmap of the whole range in one
// key updated by compare-and-swap, on which every allocation in the
// cluster conflicts). Reservations are made before the Service is
// written and released after it is deleted, so a crash in between can
// leak one; Repairer finds and frees those, and recreates reservations
// that live services lack (services written before reservations existed).
package servicealloc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Prefix is where reservations live in etcd: outside the objects'
// /registry/ prefix, so the object cache never sees them, and inside an
// etcd snapshot, so a restored cluster keeps them.
const Prefix = "/wharf/allocations/"

// Range is a set of values allocated together.
type Range string

// The ranges of services. Health check node ports come from NodePorts.
const (
	ClusterIPs Range = "serviceips"
	NodePorts  Range = "servicenodeports"
)

// Key is one reservable value of a range, e.g. {ClusterIPs, "10.96.0.10"}.
type Key struct {
	Range Range
	Value string
}

func (k Key) path() string { return Prefix + string(k.Range) + "/" + k.Value }

func (k Key) String() string { return string(k.Range) + "/" + k.Value }

// Owner is the service holding a reservation.
type Owner struct {
	UID             string
	Namespace, Name string
}

func (o Owner) encode() string { return o.UID + " " + o.Namespace + "/" + o.Name }

func (o Owner) String() string { return o.Namespace + "/" + o.Name }

// parseOwner reads encode's format.
func parseOwner(s string) (Owner, error) {
	uid, nn, ok := strings.Cut(s, " ")
	ns, name, ok2 := strings.Cut(nn, "/")
	if !ok || !ok2 || uid == "" || name == "" {
		return Owner{}, fmt.Errorf("reservation owner %q: want \"<uid> <namespace>/<name>\"", s)
	}
	return Owner{UID: uid, Namespace: ns, Name: name}, nil
}

// ErrTaken is returned when another service holds a value.
var ErrTaken = errors.New("already allocated")

// Allocator makes and releases reservations.
type Allocator struct {
	client *clientv3.Client
	log    *slog.Logger
}

// New returns an allocator on client.
func New(client *clientv3.Client, log *slog.Logger) *Allocator {
	return &Allocator{client: client, log: log}
}

// Reserve takes k for o. created reports a reservation made now (false:
// o held it already); ErrTaken that another service holds it.
func (a *Allocator) Reserve(ctx context.Context, k Key, o Owner) (created bool, err error) {
	p := k.path()
	resp, err := a.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(p), "=", 0)).
		Then(clientv3.OpPut(p, o.encode())).
		Else(clientv3.OpGet(p)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("reserve %s: %w", k, err)
	}
	if resp.Succeeded {
		return true, nil
	}
	return false, heldBy(k, o, resp.Responses[0].GetResponseRange().Kvs)
}

// Check is Reserve for a dry run: nil when k is free or o's.
func (a *Allocator) Check(ctx context.Context, k Key, o Owner) error {
	resp, err := a.client.Get(ctx, k.path())
	if err != nil {
		return fmt.Errorf("check %s: %w", k, err)
	}
	return heldBy(k, o, resp.Kvs)
}

// heldBy is nil when kvs (the key's value, if any) is free or o's.
func heldBy(k Key, o Owner, kvs []*mvccpb.KeyValue) error {
	if len(kvs) == 0 {
		return nil
	}
	holder, err := parseOwner(string(kvs[0].Value))
	if err == nil && holder.UID == o.UID {
		return nil
	}
	return fmt.Errorf("%s held by service %s: %w", k, holder, ErrTaken)
}

// Release frees the keys o holds; keys another service holds (or none)
// are left alone, so a late release never frees a value reused since.
func (a *Allocator) Release(ctx context.Context, o Owner, keys ...Key) error {
	var errs []error
	for _, k := range keys {
		p := k.path()
		_, err := a.client.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(p), "=", o.encode())).
			Then(clientv3.OpDelete(p)).
			Commit()
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s of %s: %w", k, o, err))
		}
	}
	return errors.Join(errs...)
}

// Reservation is one stored reservation.
type Reservation struct {
	Key   Key
	Owner Owner
	// ModRevision identifies this reservation: a value released and taken
	// again has a new one.
	ModRevision int64
}

// List returns every reservation of r.
func (a *Allocator) List(ctx context.Context, r Range) ([]Reservation, error) {
	prefix := Prefix + string(r) + "/"
	resp, err := a.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s reservations: %w", r, err)
	}
	out := make([]Reservation, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		o, err := parseOwner(string(kv.Value))
		if err != nil {
			a.log.Warn("unreadable reservation: repair frees it", "key", string(kv.Key), "err", err)
		}
		out = append(out, Reservation{
			Key:   Key{Range: r, Value: strings.TrimPrefix(string(kv.Key), prefix)},
			Owner: o, ModRevision: kv.ModRevision,
		})
	}
	return out, nil
}

// free deletes a reservation unless it changed since it was listed.
func (a *Allocator) free(ctx context.Context, r Reservation) (bool, error) {
	p := r.Key.path()
	resp, err := a.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(p), "=", r.ModRevision)).
		Then(clientv3.OpDelete(p)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("free %s: %w", r.Key, err)
	}
	return resp.Succeeded, nil
}

// ReserveAll takes every key for o in one transaction, all or none. It
// returns the keys another service holds (nothing was reserved then), or
// the keys it reserved now (keys o held already are left out).
func (a *Allocator) ReserveAll(ctx context.Context, o Owner, keys []Key) (created, taken []Key, err error) {
	for len(keys) > 0 {
		cmps := make([]clientv3.Cmp, 0, len(keys))
		puts := make([]clientv3.Op, 0, len(keys))
		gets := make([]clientv3.Op, 0, len(keys))
		for _, k := range keys {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k.path()), "=", 0))
			puts = append(puts, clientv3.OpPut(k.path(), o.encode()))
			gets = append(gets, clientv3.OpGet(k.path()))
		}
		resp, err := a.client.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		if err != nil {
			return nil, nil, fmt.Errorf("reserve %v: %w", keys, err)
		}
		if resp.Succeeded {
			return keys, nil, nil
		}
		// Some exist: another's are taken; o's own need no reserving.
		var free []Key
		for i, k := range keys {
			switch err := heldBy(k, o, resp.Responses[i].GetResponseRange().Kvs); {
			case errors.Is(err, ErrTaken):
				taken = append(taken, k)
			case len(resp.Responses[i].GetResponseRange().Kvs) == 0:
				free = append(free, k)
			}
		}
		if len(taken) > 0 {
			return nil, taken, nil
		}
		keys = free
	}
	return nil, nil, nil
}

// CheckAll is ReserveAll for a dry run: the keys another service holds.
func (a *Allocator) CheckAll(ctx context.Context, o Owner, keys []Key) ([]Key, error) {
	var taken []Key
	for _, k := range keys {
		if err := a.Check(ctx, k, o); errors.Is(err, ErrTaken) {
			taken = append(taken, k)
		} else if err != nil {
			return nil, err
		}
	}
	return taken, nil
}
