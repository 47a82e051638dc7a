package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
)

// EtcdStore is Shared on etcd. A blob is split in chunks of at most
// ChunkSize bytes (etcd refuses requests over 1.5 MiB by default) under
// <prefix>chunks/<hex>/<index>; the key <prefix>blobs/<hex>, holding
// the size, is written last, so a blob is seen only once complete.
// Tags and revisions are keys under <prefix>meta/. Being in etcd, the
// images are in every etcd snapshot of the cluster, and as durable as
// its other state.
type EtcdStore struct {
	client *clientv3.Client
	prefix string
}

// ChunkSize is the most bytes of a blob one etcd value holds.
const ChunkSize = 1 << 20

// DefaultEtcdPrefix is where a cluster's registry lives in its etcd:
// outside the API objects' /registry/.
const DefaultEtcdPrefix = "/wharf/images/"

// NewEtcdStore returns a store under prefix (e.g. DefaultEtcdPrefix).
func NewEtcdStore(client *clientv3.Client, prefix string) *EtcdStore {
	return &EtcdStore{client: client, prefix: prefix}
}

func (e *EtcdStore) blobKey(digest string) string { return e.prefix + "blobs/" + digest }

func (e *EtcdStore) chunkKey(digest string, i int) string {
	return fmt.Sprintf("%schunks/%s/%08d", e.prefix, digest, i)
}

// putParallel is how many chunks of a blob are written at once: etcd
// commits concurrent writes in one batch, one fsync.
const putParallel = 4

// PutBlob implements Shared.
func (e *EtcdStore) PutBlob(ctx context.Context, digest string, r io.Reader, size int64) error {
	if size <= ChunkSize {
		// One chunk (configs, manifests, small layers): one transaction.
		data, err := io.ReadAll(io.LimitReader(r, ChunkSize+1))
		if err != nil {
			return fmt.Errorf("blob %s: %w", digest, err)
		}
		if int64(len(data)) != size {
			return fmt.Errorf("blob %s: read %d bytes, want %d", digest, len(data), size)
		}
		ops := []clientv3.Op{clientv3.OpPut(e.blobKey(digest), strconv.FormatInt(size, 10))}
		if size > 0 {
			ops = append(ops, clientv3.OpPut(e.chunkKey(digest, 0), string(data)))
		}
		if _, err := e.client.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("blob %s: %w", digest, err)
		}
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(putParallel)
	var n int64
	for i := 0; ; i++ {
		buf := make([]byte, ChunkSize)
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			n += int64(m)
			g.Go(func() error {
				if _, err := e.client.Put(gctx, e.chunkKey(digest, i), string(buf[:m])); err != nil {
					return fmt.Errorf("blob %s chunk %d: %w", digest, i, err)
				}
				return nil
			})
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			g.Wait()
			return err
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("blob %s: read %d bytes, want %d", digest, n, size)
	}
	if _, err := e.client.Put(ctx, e.blobKey(digest), strconv.FormatInt(size, 10)); err != nil {
		return fmt.Errorf("blob %s: %w", digest, err)
	}
	return nil
}

// BlobSize implements Shared.
func (e *EtcdStore) BlobSize(ctx context.Context, digest string) (int64, bool, error) {
	resp, err := e.client.Get(ctx, e.blobKey(digest))
	if err != nil {
		return 0, false, fmt.Errorf("blob %s: %w", digest, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, false, nil
	}
	size, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("blob %s: size %q: %w", digest, resp.Kvs[0].Value, err)
	}
	return size, true, nil
}

// GetBlob implements Shared: chunk by chunk, all read at the revision
// the size was, so a blob rewritten meanwhile is never mixed.
func (e *EtcdStore) GetBlob(ctx context.Context, digest string, w io.Writer) (bool, error) {
	resp, err := e.client.Get(ctx, e.blobKey(digest))
	if err != nil {
		return false, fmt.Errorf("blob %s: %w", digest, err)
	}
	if len(resp.Kvs) == 0 {
		return false, nil
	}
	size, err := strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return false, fmt.Errorf("blob %s: size %q: %w", digest, resp.Kvs[0].Value, err)
	}
	rev := resp.Header.Revision
	var n int64
	for i := 0; n < size; i++ {
		c, err := e.client.Get(ctx, e.chunkKey(digest, i), clientv3.WithRev(rev))
		if err != nil {
			return false, fmt.Errorf("blob %s chunk %d: %w", digest, i, err)
		}
		if len(c.Kvs) == 0 || len(c.Kvs[0].Value) == 0 {
			return false, fmt.Errorf("blob %s: chunk %d is missing", digest, i)
		}
		m, err := w.Write(c.Kvs[0].Value)
		if err != nil {
			return false, err
		}
		n += int64(m)
	}
	if n != size {
		return false, fmt.Errorf("blob %s: %d bytes in chunks, want %d", digest, n, size)
	}
	return true, nil
}

// Get implements Shared.
func (e *EtcdStore) Get(ctx context.Context, path string) (string, error) {
	resp, err := e.client.Get(ctx, e.prefix+"meta/"+path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(resp.Kvs) == 0 {
		return "", fs.ErrNotExist
	}
	return string(resp.Kvs[0].Value), nil
}

// Put implements Shared.
func (e *EtcdStore) Put(ctx context.Context, pathValues ...string) error {
	if len(pathValues)%2 != 0 {
		return fmt.Errorf("put %q: want path, value pairs", pathValues)
	}
	ops := make([]clientv3.Op, 0, len(pathValues)/2)
	for i := 0; i < len(pathValues); i += 2 {
		ops = append(ops, clientv3.OpPut(e.prefix+"meta/"+pathValues[i], pathValues[i+1]))
	}
	if _, err := e.client.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("%s: %w", pathValues[0], err)
	}
	return nil
}

// Delete implements Shared.
func (e *EtcdStore) Delete(ctx context.Context, path string) error {
	if _, err := e.client.Delete(ctx, e.prefix+"meta/"+path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// List implements Shared.
func (e *EtcdStore) List(ctx context.Context, prefix string) ([]string, error) {
	base := e.prefix + "meta/"
	resp, err := e.client.Get(ctx, base+prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	out := make([]string, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), base))
	}
	return out, nil
}
