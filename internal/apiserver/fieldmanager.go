package apiserver

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/applyconfigurations"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"wharf.dev/wharf/internal/resources"
)

// Every write records who owns which fields in metadata.managedFields, and
// server-side apply merges by those records: both are the upstream field
// manager (k8s.io/apimachinery/pkg/util/managedfields), with the schemas
// client-go compiles in for the built-in kinds (list types and map keys,
// so that two appliers of one Deployment's containers merge by name).
// Kinds without such a schema (wharf.dev's own) are merged by a deduced
// schema, as upstream merges custom resources without one: maps field by
// field, lists as a whole.

// fieldManagers holds one field manager per kind and subresource.
type fieldManagers struct {
	reg     *resources.Registry
	builtin managedfields.TypeConverter
	mu      sync.Mutex
	byKey   map[fieldManagerKey]*managedfields.FieldManager
}

type fieldManagerKey struct {
	gvk         schema.GroupVersionKind
	subresource string
}

func newFieldManagers(reg *resources.Registry) *fieldManagers {
	return &fieldManagers{
		reg:     reg,
		builtin: applyconfigurations.NewTypeConverter(reg.Scheme),
		byKey:   map[fieldManagerKey]*managedfields.FieldManager{},
	}
}

// For returns the field manager of a resource's writes through subresource
// ("" the object itself, "status", "scale").
func (f *fieldManagers) For(res *resources.Resource, subresource string) (*managedfields.FieldManager, error) {
	key := fieldManagerKey{res.GroupVersionKind(), subresource}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fm, ok := f.byKey[key]; ok {
		return fm, nil
	}
	tc := f.builtin
	if !f.compiledIn(key.gvk) {
		tc = managedfields.NewDeducedTypeConverter()
	}
	gv := key.gvk.GroupVersion()
	fm, err := managedfields.NewDefaultFieldManager(tc, f.reg.Scheme, defaulter{f.reg}, f.reg.Scheme,
		key.gvk, gv, subresource, resetFields(res, subresource))
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", key.gvk, err)
	}
	f.byKey[key] = fm
	return fm, nil
}

// compiledIn: client-go carries a schema for the kinds of k8s.io/api.
func (f *fieldManagers) compiledIn(gvk schema.GroupVersionKind) bool {
	t, ok := f.reg.Scheme.AllKnownTypes()[gvk]
	return ok && strings.HasPrefix(t.PkgPath(), "k8s.io/api/")
}

// resetFields are the fields a write through subresource may not set: the
// object itself leaves status to /status, and /status leaves the spec.
func resetFields(res *resources.Resource, subresource string) map[fieldpath.APIVersion]fieldpath.Filter {
	if !res.HasStatus {
		return nil
	}
	path := "status"
	switch subresource {
	case "":
	case "status":
		path = "spec"
	default:
		return nil
	}
	return map[fieldpath.APIVersion]fieldpath.Filter{
		fieldpath.APIVersion(res.GVR.GroupVersion().String()): fieldpath.NewExcludeSetFilter(fieldpath.NewSet(fieldpath.MakePathOrDie(path))),
	}
}

// defaulter applies a kind's defaults to the result of an apply, as the
// decoding of a request body does upstream.
type defaulter struct{ reg *resources.Registry }

func (d defaulter) Default(obj runtime.Object) {
	if _, unstructured := obj.(runtime.Unstructured); unstructured {
		return
	}
	gvks, _, err := d.reg.Scheme.ObjectKinds(obj)
	if err != nil {
		return
	}
	if res, ok := d.reg.ForKind(gvks[0]); ok && res.Default != nil {
		res.Default(obj)
	}
}

// maxManagerLen bounds a field manager's name, as upstream does.
const maxManagerLen = 128

// managerName is the field manager a write is recorded under: the
// fieldManager parameter, else the client's user agent up to its first
// "/" (as upstream: "kubectl-edit", "wharf"), cut to 128 bytes.
func managerName(r *http.Request) (string, error) {
	if m := r.URL.Query().Get("fieldManager"); m != "" {
		if len(m) > maxManagerLen || !utf8.ValidString(m) {
			return "", apierrors.NewInvalid(patchOptionsKind, "", field.ErrorList{field.Invalid(field.NewPath("fieldManager"), m,
				fmt.Sprintf("must be valid UTF-8 of at most %d bytes", maxManagerLen))})
		}
		return m, nil
	}
	ua, _, _ := strings.Cut(r.UserAgent(), "/")
	if len(ua) > maxManagerLen {
		ua = ua[:maxManagerLen]
	}
	return strings.ToValidUTF8(ua, ""), nil
}

var patchOptionsKind = schema.GroupKind{Group: metav1.GroupName, Kind: "PatchOptions"}
