package apiserver

import (
	"fmt"
	"net/http"
	"reflect"
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
	convert versionConverter
	mu      sync.Mutex
	byKey   map[fieldManagerKey]*managedfields.FieldManager
}

// fieldManagerKey is a resource (a custom resource's changes with its
// definition, and with it its Resource) and a subresource.
type fieldManagerKey struct {
	res         *resources.Resource
	subresource string
}

func newFieldManagers(reg *resources.Registry) *fieldManagers {
	return &fieldManagers{
		reg:     reg,
		builtin: applyconfigurations.NewTypeConverter(reg.Scheme),
		convert: versionConverter{reg},
		byKey:   map[fieldManagerKey]*managedfields.FieldManager{},
	}
}

// For returns the field manager of a resource's writes through subresource
// ("" the object itself, "status", "scale").
func (f *fieldManagers) For(res *resources.Resource, subresource string) (*managedfields.FieldManager, error) {
	key := fieldManagerKey{res, subresource}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fm, ok := f.byKey[key]; ok {
		return fm, nil
	}
	gvk := res.GroupVersionKind()
	var fm *managedfields.FieldManager
	var err error
	switch {
	case res.TypeConverter != nil:
		// A custom resource: merged by its definition's schema; its
		// objects stay unstructured, in the one version they are stored in.
		fm, err = managedfields.NewDefaultCRDFieldManager(res.TypeConverter(), sameVersion{}, defaulter{f.reg}, creater{res},
			gvk, gvk.GroupVersion(), subresource, resetFields(res, subresource))
	case f.compiledIn(gvk):
		// Writes are recorded in the request's version (gvk); objects
		// come and go in the stored one (the hub), and managers of other
		// versions are compared through conversion, as upstream does.
		fm, err = managedfields.NewDefaultFieldManager(f.builtin, f.convert, defaulter{f.reg}, f.reg.Scheme,
			gvk, res.Storage().GVR.GroupVersion(), subresource, resetFields(res, subresource))
	default:
		fm, err = managedfields.NewDefaultFieldManager(managedfields.NewDeducedTypeConverter(), f.convert, defaulter{f.reg}, f.reg.Scheme,
			gvk, res.Storage().GVR.GroupVersion(), subresource, resetFields(res, subresource))
	}
	if err != nil {
		return nil, fmt.Errorf("field manager of %s: %w", gvk, err)
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
	gvks, _, err := d.reg.Scheme.ObjectKinds(obj)
	if err != nil {
		return
	}
	// Only objects of the kind's own Go type: a built-in kind's
	// defaults do not take an unstructured object. Another version of a
	// stored kind is defaulted once converted to the stored type, by the
	// write that follows.
	if res, ok := d.reg.ForKind(gvks[0]); ok && res.Default != nil && res.Conversion == nil && reflect.TypeOf(obj) == reflect.TypeOf(res.New()) {
		res.Default(obj)
	}
}

// versionConverter converts between the versions a kind is served in
// (resources.Conversion) for the field manager, which works in the
// request's version; objects of other kinds are the scheme's to convert.
type versionConverter struct{ reg *resources.Registry }

func (c versionConverter) Convert(in, out, context any) error {
	return c.reg.Scheme.Convert(in, out, context)
}

func (c versionConverter) ConvertFieldLabel(gvk schema.GroupVersionKind, label, value string) (string, string, error) {
	return c.reg.Scheme.ConvertFieldLabel(gvk, label, value)
}

func (c versionConverter) ConvertToVersion(in runtime.Object, target runtime.GroupVersioner) (runtime.Object, error) {
	from := in.GetObjectKind().GroupVersionKind()
	if u, ok := in.(runtime.Unstructured); ok {
		// The merge's result: typed first, in its own version.
		typed, err := c.reg.Scheme.ConvertToVersion(u, from.GroupVersion())
		if err != nil {
			return nil, err
		}
		in = typed
	} else if gvks, _, err := c.reg.Scheme.ObjectKinds(in); err == nil {
		from = gvks[0]
	}
	res, ok := c.reg.ForKind(from)
	if !ok {
		return c.reg.Scheme.ConvertToVersion(in, target)
	}
	versions := c.versionsOf(res.Storage())
	if len(versions) == 1 {
		return c.reg.Scheme.ConvertToVersion(in, target)
	}
	for _, to := range versions {
		gvk := to.GroupVersionKind()
		if want, ok := target.KindForGroupVersionKinds([]schema.GroupVersionKind{gvk}); !ok || want != gvk {
			continue
		}
		if gvk == from {
			if in.GetObjectKind().GroupVersionKind() != gvk {
				in = in.DeepCopyObject()
				in.GetObjectKind().SetGroupVersionKind(gvk)
			}
			return in, nil
		}
		stored, err := res.Stored(in)
		if err != nil {
			return nil, err
		}
		return to.Served(stored)
	}
	return nil, runtime.NewNotRegisteredErrForTarget(c.reg.Scheme.Name(), reflect.TypeOf(in), target)
}

// versionsOf returns the resources serving stored's objects: stored, then
// its other versions.
func (c versionConverter) versionsOf(stored *resources.Resource) []*resources.Resource {
	out := []*resources.Resource{stored}
	for _, r := range c.reg.All() {
		if r.Conversion != nil && r.Conversion.Storage.GroupVersionKind() == stored.GroupVersionKind() {
			out = append(out, r)
		}
	}
	return out
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

// sameVersion converts custom resources, which are served in the version
// they are stored in (conversion None), by changing nothing.
type sameVersion struct{}

func (sameVersion) Convert(in, out, _ any) error {
	return fmt.Errorf("converting %T to %T is not supported", in, out)
}

func (sameVersion) ConvertToVersion(in runtime.Object, gv runtime.GroupVersioner) (runtime.Object, error) {
	kind := in.GetObjectKind().GroupVersionKind()
	if target, ok := gv.KindForGroupVersionKinds([]schema.GroupVersionKind{kind}); !ok || target != kind {
		return nil, fmt.Errorf("%s cannot be converted to %v: one version per custom resource", kind, gv)
	}
	return in, nil
}

func (sameVersion) ConvertFieldLabel(_ schema.GroupVersionKind, label, value string) (string, string, error) {
	return label, value, nil
}

// creater makes empty objects of a custom resource.
type creater struct{ res *resources.Resource }

func (c creater) New(schema.GroupVersionKind) (runtime.Object, error) { return c.res.New(), nil }
