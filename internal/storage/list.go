package storage

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/runtime"
)

// ListOptions select a page of objects.
type ListOptions struct {
	// ResourceVersion and Match as in Kubernetes: "" is the latest state;
	// "0" any state; N with Match "" or "NotOlderThan" a state at least as
	// new as N; N with Match "Exact" the state at N.
	ResourceVersion string
	Match           string
	Limit           int64
	Continue        string
	Predicate       Predicate
}

// ListResult is one page.
type ListResult struct {
	Items []runtime.Object
	// Memos, when set, has one Memo per item for values derived from it.
	Memos              []*Memo
	ResourceVersion    int64
	Continue           string
	RemainingItemCount *int64
}

type continueToken struct {
	V     string `json:"v"`
	RV    int64  `json:"rv"`
	Start string `json:"start"`
}

func encodeContinue(rv int64, start string) string {
	b, _ := json.Marshal(continueToken{V: "meta.k8s.io/v1", RV: rv, Start: start})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(s string) (continueToken, error) {
	var t continueToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &t)
	}
	if err != nil || t.V != "meta.k8s.io/v1" || t.RV <= 0 {
		return t, ErrBadContinue
	}
	return t, nil
}

// List returns the objects under prefix that match, in key order.
func (s *Store) List(ctx context.Context, prefix string, opts ListOptions) (*ListResult, error) {
	if opts.Continue != "" {
		t, err := decodeContinue(opts.Continue)
		if err != nil {
			return nil, err
		}
		if res, ok := s.listCache(prefix, prefix+t.Start, t.RV, opts); ok {
			return res, nil
		}
		return s.listEtcd(ctx, prefix, prefix+t.Start, t.RV, opts)
	}
	if opts.Match == "Exact" {
		rev, err := ParseRV(opts.ResourceVersion)
		if err != nil {
			return nil, err
		}
		if res, ok := s.listCache(prefix, prefix, rev, opts); ok {
			return res, nil
		}
		return s.listEtcd(ctx, prefix, prefix, rev, opts)
	}
	if err := s.waitRV(ctx, opts.ResourceVersion); err != nil {
		return nil, err
	}
	res, _ := s.listCache(prefix, prefix, 0, opts)
	return res, nil
}

// listCache serves a list from the cache when it holds revision atRev (0: any).
func (s *Store) listCache(prefix, from string, atRev int64, opts ListOptions) (*ListResult, bool) {
	c := s.cache
	c.mu.RLock()
	defer c.mu.RUnlock()
	if atRev != 0 && atRev != c.rev {
		return nil, false
	}
	res := &ListResult{ResourceVersion: c.rev}
	b := c.lookup(prefix)
	if b == nil {
		return res, true
	}
	var remaining int64
	b.ascend(from, prefix, func(k string, e *entry) bool {
		if res.Continue != "" {
			remaining++
			return true
		}
		if !opts.Predicate.matches(e.obj) {
			return true
		}
		if opts.Limit > 0 && int64(len(res.Items)) == opts.Limit {
			res.Continue = encodeContinue(c.rev, k[len(prefix):])
			if opts.Predicate != nil {
				return false // the count is only given for unfiltered lists
			}
			remaining = 1
			return true
		}
		res.Items = append(res.Items, e.obj)
		res.Memos = append(res.Memos, &e.memo)
		return true
	})
	if res.Continue != "" && opts.Predicate == nil {
		res.RemainingItemCount = &remaining
	}
	return res, true
}

// listEtcd reads a list at an older revision from etcd.
func (s *Store) listEtcd(ctx context.Context, prefix, from string, rev int64, opts ListOptions) (*ListResult, error) {
	res := &ListResult{ResourceVersion: rev}
	end := clientv3.GetPrefixRangeEnd(prefix)
	batch := max(opts.Limit, 500)
	key := from
	for {
		resp, err := s.client.Get(ctx, key, clientv3.WithRange(end), clientv3.WithRev(rev), clientv3.WithLimit(batch))
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil, fmt.Errorf("list %s at %d: %w", prefix, rev, ErrGone)
		}
		if err != nil {
			return nil, fmt.Errorf("list %s at %d: %w", prefix, rev, err)
		}
		if rev == 0 {
			rev, res.ResourceVersion = resp.Header.Revision, resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			k := string(kv.Key)
			if opts.Limit > 0 && int64(len(res.Items)) == opts.Limit {
				res.Continue = encodeContinue(rev, k[len(prefix):])
				return res, nil
			}
			obj, err := s.codec.decode(kv.Value, kv.ModRevision)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if opts.Predicate.matches(obj) {
				res.Items = append(res.Items, obj)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return res, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
