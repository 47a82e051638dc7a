package apiserver

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/storage"
)

// storeObjects lets a kind's Admit and ValidateDelete hooks read other
// objects: the latest state from storage, not the watch cache, so that an
// object just written (a template, then its cluster) is seen.
type storeObjects struct{ s *Server }

var _ resources.Objects = storeObjects{}

func (o storeObjects) resource(gvr schema.GroupVersionResource) (*resources.Resource, error) {
	res, ok := o.s.reg.Get(gvr)
	if !ok {
		return nil, fmt.Errorf("admission reads %s, which this server does not serve", gvr)
	}
	return res, nil
}

func (o storeObjects) Get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string) (runtime.Object, error) {
	res, err := o.resource(gvr)
	if err != nil {
		return nil, err
	}
	obj, err := o.s.store.Get(ctx, objectKey(res, namespace, name), "")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, apierrors.NewNotFound(gvr.GroupResource(), name)
	}
	return obj, err
}

func (o storeObjects) List(ctx context.Context, gvr schema.GroupVersionResource, namespace string) ([]runtime.Object, error) {
	res, err := o.resource(gvr)
	if err != nil {
		return nil, err
	}
	prefix := resourcePrefix(res)
	if res.Namespaced && namespace != "" {
		prefix += namespace + "/"
	}
	page, err := o.s.store.List(ctx, prefix, storage.ListOptions{})
	if err != nil {
		return nil, err
	}
	return page.Items, nil
}
