package images

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Remote is a registry to push to and list: its host[:port] and a
// transport that trusts its certificate and sends credentials (for the
// cluster's registry, the kubeconfig's CA and bearer token).
type Remote struct {
	Host      string
	Transport http.RoundTripper
}

func (r Remote) options(ctx context.Context) []remote.Option {
	// The transport authenticates every request itself, so the registry
	// never has to challenge: anonymous here means "add nothing".
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(authn.Anonymous), remote.WithUserAgent("wharf")}
	if r.Transport != nil {
		opts = append(opts, remote.WithTransport(r.Transport))
	}
	return opts
}

// Target returns ref (e.g. registry.wharf.local/wharf/pause:v1, or
// wharf/pause:v1) with its registry replaced by r: the same repository
// and tag or digest on r. A reference without a tag gets "latest".
func (r Remote) Target(ref string) (name.Reference, error) {
	parsed, err := name.ParseReference(ref, name.WithDefaultRegistry(Registry))
	if err != nil {
		return nil, err
	}
	repo, err := name.NewRepository(r.Host + "/" + parsed.Context().RepositoryStr())
	if err != nil {
		return nil, err
	}
	if d, ok := parsed.(name.Digest); ok {
		return repo.Digest(d.DigestStr()), nil
	}
	return repo.Tag(parsed.Identifier()), nil
}

// Push uploads an image or index (with its children) to ref and returns
// its digest.
func (r Remote) Push(ctx context.Context, it Named, ref name.Reference) (v1.Hash, error) {
	var err error
	var h v1.Hash
	switch {
	case it.Index != nil:
		if err = remote.WriteIndex(ref, it.Index, r.options(ctx)...); err == nil {
			h, err = it.Index.Digest()
		}
	case it.Image != nil:
		if err = remote.Write(ref, it.Image, r.options(ctx)...); err == nil {
			h, err = it.Image.Digest()
		}
	default:
		err = fmt.Errorf("nothing to push")
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return h, nil
}

// Entry is one tag in a registry.
type Entry struct {
	Repository string          `json:"repository"`
	Tag        string          `json:"tag"`
	Digest     string          `json:"digest"`
	MediaType  types.MediaType `json:"mediaType"`
	// Size is what a pull transfers: manifests, configs and layers (of
	// every platform, for an index).
	Size int64 `json:"size"`
}

// List returns every tag of every repository, sorted.
func (r Remote) List(ctx context.Context) ([]Entry, error) {
	reg, err := name.NewRegistry(r.Host)
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, reg, r.options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("catalog of %s: %w", r.Host, err)
	}
	sort.Strings(repos)
	var out []Entry
	for _, repoName := range repos {
		repo := reg.Repo(repoName)
		tags, err := remote.List(repo, r.options(ctx)...)
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", repo, err)
		}
		sort.Strings(tags)
		for _, tag := range tags {
			desc, err := remote.Get(repo.Tag(tag), r.options(ctx)...)
			if err != nil {
				return nil, fmt.Errorf("%s:%s: %w", repo, tag, err)
			}
			e := Entry{Repository: repoName, Tag: tag, Digest: desc.Digest.String(), MediaType: desc.MediaType}
			var it Named
			if desc.MediaType.IsIndex() {
				it.Index, err = desc.ImageIndex()
			} else {
				it.Image, err = desc.Image()
			}
			if err == nil {
				e.Size, err = size(it)
			}
			if err != nil {
				return nil, fmt.Errorf("%s:%s: %w", repo, tag, err)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// size adds up the manifests, configs and layers of an image or index.
func size(it Named) (int64, error) {
	if it.Image != nil {
		return imageSize(it.Image)
	}
	m, err := it.Index.IndexManifest()
	if err != nil {
		return 0, err
	}
	raw, err := it.Index.RawManifest()
	if err != nil {
		return 0, err
	}
	total := int64(len(raw))
	for _, d := range m.Manifests {
		var child Named
		switch {
		case d.MediaType.IsIndex():
			child.Index, err = it.Index.ImageIndex(d.Digest)
		case d.MediaType.IsImage():
			child.Image, err = it.Index.Image(d.Digest)
		default:
			total += d.Size
			continue
		}
		if err != nil {
			return 0, err
		}
		n, err := size(child)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
