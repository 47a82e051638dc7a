package resources

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestBuiltinRegistry(t *testing.T) {
	reg, err := NewRegistry(NewScheme())
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	want := map[string]struct {
		short, categories []string
		namespaced        bool
		status            bool
		scale             bool
	}{
		"namespaces":          {short: []string{"ns"}, status: true},
		"nodes":               {short: []string{"no"}, status: true},
		"pods":                {short: []string{"po"}, categories: []string{"all"}, namespaced: true, status: true},
		"services":            {short: []string{"svc"}, categories: []string{"all"}, namespaced: true, status: true},
		"endpoints":           {short: []string{"ep"}, namespaced: true},
		"configmaps":          {short: []string{"cm"}, namespaced: true},
		"secrets":             {namespaced: true},
		"events":              {short: []string{"ev"}, namespaced: true},
		"serviceaccounts":     {short: []string{"sa"}, namespaced: true},
		"deployments":         {short: []string{"deploy"}, categories: []string{"all"}, namespaced: true, status: true, scale: true},
		"replicasets":         {short: []string{"rs"}, categories: []string{"all"}, namespaced: true, status: true, scale: true},
		"statefulsets":        {short: []string{"sts"}, categories: []string{"all"}, namespaced: true, status: true, scale: true},
		"controllerrevisions": {namespaced: true},
		"daemonsets":          {short: []string{"ds"}, categories: []string{"all"}, namespaced: true, status: true},
		"leases":              {namespaced: true},
		"endpointslices":      {namespaced: true},
		"ingresses":           {short: []string{"ing"}, namespaced: true, status: true},
		"ingressclasses":      {},
		"networkpolicies":     {short: []string{"netpol"}, namespaced: true},

		"jobs":                     {categories: []string{"all"}, namespaced: true, status: true},
		"cronjobs":                 {short: []string{"cj"}, categories: []string{"all"}, namespaced: true, status: true},
		"horizontalpodautoscalers": {short: []string{"hpa"}, categories: []string{"all"}, namespaced: true, status: true},
		"poddisruptionbudgets":     {short: []string{"pdb"}, namespaced: true, status: true},
		"persistentvolumes":        {short: []string{"pv"}, status: true},
		"persistentvolumeclaims":   {short: []string{"pvc"}, namespaced: true, status: true},
		"storageclasses":           {short: []string{"sc"}},
		"csidrivers":               {},
		"volumeattachments":        {status: true},
		"roles":                    {namespaced: true},
		"clusterroles":             {},
		"rolebindings":             {namespaced: true},
		"clusterrolebindings":      {},

		"validatingwebhookconfigurations":   {categories: []string{"api-extensions"}},
		"mutatingwebhookconfigurations":     {categories: []string{"api-extensions"}},
		"validatingadmissionpolicies":       {categories: []string{"api-extensions"}, status: true},
		"validatingadmissionpolicybindings": {categories: []string{"api-extensions"}},

		"customresourcedefinitions":  {short: []string{"crd", "crds"}, categories: []string{"api-extensions"}, status: true},
		"certificatesigningrequests": {short: []string{"csr"}, status: true},

		"tokenreviews": {}, "selfsubjectreviews": {}, "selfsubjectaccessreviews": {}, "selfsubjectrulesreviews": {},
		"subjectaccessreviews": {}, "localsubjectaccessreviews": {namespaced: true},

		// Other versions of the kinds above.
		"events.v1.events.k8s.io":                          {short: []string{"ev"}, namespaced: true},
		"horizontalpodautoscalers.v1.autoscaling":          {short: []string{"hpa"}, categories: []string{"all"}, namespaced: true, status: true},
		"selfsubjectreviews.v1beta1.authentication.k8s.io": {},

		// Figures computed by the server.
		"nodes.v1beta1.metrics.k8s.io": {},
		"pods.v1beta1.metrics.k8s.io":  {namespaced: true},
	}
	if len(reg.All()) != len(want) {
		t.Errorf("%d resources, want %d", len(reg.All()), len(want))
	}
	for _, r := range reg.All() {
		name := r.GVR.Resource
		if r.Conversion != nil || r.ReadOnly {
			name = r.GVR.Resource + "." + r.GVR.Version + "." + r.GVR.Group
		}
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("unexpected resource %v", r.GVR)
			}
			if diff := cmp.Diff(w.short, r.ShortNames); diff != "" {
				t.Errorf("short names (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(w.categories, r.Categories); diff != "" {
				t.Errorf("categories (-want +got):\n%s", diff)
			}
			if r.Namespaced != w.namespaced || r.HasStatus != w.status || (r.Scale != nil) != w.scale {
				t.Errorf("namespaced %v status %v scale %v, want %v %v %v", r.Namespaced, r.HasStatus, r.Scale != nil, w.namespaced, w.status, w.scale)
			}
			if got, ok := reg.ForKind(r.GroupVersionKind()); !ok || got != r {
				t.Errorf("ForKind(%v) does not find the resource", r.GroupVersionKind())
			}
			gvks, _, err := reg.Scheme.ObjectKinds(r.New())
			if err != nil || len(gvks) == 0 || gvks[0] != r.GroupVersionKind() {
				t.Errorf("New() is %v (%v), want kind %v", gvks, err, r.GroupVersionKind())
			}
			if r.CreateOnly {
				return // a question answered by the server: no list, no hooks
			}
			if _, err := meta.ExtractList(r.NewList()); err != nil {
				t.Errorf("NewList() is not a list: %v", err)
			}
			if r.SingularName == "" || r.Kind == "" {
				t.Errorf("singular name %q, kind %q", r.SingularName, r.Kind)
			}
			if r.ReadOnly {
				if cells := r.Row(r.New()); len(cells) != len(r.Columns) {
					t.Errorf("%d cells for %d columns", len(cells), len(r.Columns))
				}
				return // computed, never written: no hooks
			}

			// Every hook copes with an empty object (of the stored type).
			obj := r.NewStored()
			if r.Default != nil {
				r.Default(obj)
			}
			if r.PrepareForCreate != nil {
				r.PrepareForCreate(obj)
			}
			switch {
			case r.ValidateWrite != nil:
				_ = r.ValidateWrite(context.Background(), obj, nil)
			case r.Validate == nil:
				t.Errorf("no Validate")
			default:
				_ = r.Validate(obj)
			}
			if r.ValidateWrite != nil {
				_ = r.ValidateWrite(context.Background(), obj, r.NewStored())
			}
			if r.ValidateUpdate != nil {
				_ = r.ValidateUpdate(obj, r.NewStored())
			}
			if r.ValidateStatus != nil {
				_ = r.ValidateStatus(obj, r.NewStored())
			}
			if r.PrepareForUpdate != nil {
				r.PrepareForUpdate(obj, r.NewStored())
			}
			if r.PrepareForStatusUpdate != nil {
				r.PrepareForStatusUpdate(obj, r.New())
			}
			for _, sub := range r.Subresources {
				sub.PrepareForUpdate(obj, r.New())
			}
			if cells := r.Row(obj); len(cells) != len(r.Columns) {
				t.Errorf("%d cells for %d columns", len(cells), len(r.Columns))
			}
			for _, c := range r.Columns {
				if c.Type != "string" && c.Type != "integer" && c.Type != "boolean" && c.Type != "date" {
					t.Errorf("column %q has type %q", c.Name, c.Type)
				}
				if c.Description == "" {
					t.Errorf("column %q has no description", c.Name)
				}
			}
			f := r.SelectableFields(obj)
			if _, ok := f["metadata.name"]; !ok {
				t.Errorf("metadata.name not selectable")
			}
		})
	}
	if _, ok := reg.Get(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}); !ok {
		t.Errorf("apps/v1 deployments not found")
	}
}

func TestRegistrySetCustom(t *testing.T) {
	reg, err := NewRegistry(NewScheme())
	if err != nil {
		t.Fatal(err)
	}
	widget := func(version string) *Resource {
		return &Resource{GVR: schema.GroupVersionResource{Group: "example.com", Version: version, Resource: "widgets"}, Kind: "Widget"}
	}
	gen := reg.Generation()
	if err := reg.SetCustom("example.com", "widgets", widget("v1"), widget("v2")); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Get(widget("v2").GVR); !ok || reg.Generation() == gen {
		t.Fatalf("widgets/v2 not served after SetCustom (generation %d -> %d)", gen, reg.Generation())
	}
	if reg.Builtin(widget("v1").GVR) {
		t.Error("a custom resource reported built-in")
	}
	// A new definition replaces every version of the old one.
	if err := reg.SetCustom("example.com", "widgets", widget("v3")); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.Get(widget("v1").GVR); ok {
		t.Error("widgets/v1 still served after its definition dropped it")
	}
	// Removing it leaves the built-in resources alone.
	n := len(reg.All())
	if err := reg.SetCustom("example.com", "widgets"); err != nil {
		t.Fatal(err)
	}
	if len(reg.All()) != n-1 {
		t.Errorf("%d resources after removing one of %d", len(reg.All()), n)
	}
	// A custom resource may not take a built-in kind's place.
	pods := &Resource{GVR: schema.GroupVersionResource{Version: "v1", Resource: "pods"}, Kind: "Pod"}
	if err := reg.SetCustom("", "pods", pods); err == nil {
		t.Error("a custom resource replaced pods")
	}
	if !reg.Builtin(pods.GVR) {
		t.Error("pods not built-in")
	}
}
