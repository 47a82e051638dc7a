package apiserver

import (
	"mime"
	"net/http"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"wharf.dev/wharf/internal/resources"
)

var allVerbs = []string{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// verbsOf returns the verbs discovery lists for res.
func verbsOf(res *resources.Resource) []string {
	if res.CreateOnly {
		return []string{"create"}
	}
	if res.ReadOnly {
		return []string{"get", "list"}
	}
	return allVerbs
}

// subresource is one subresource as discovery describes it.
type subresource struct {
	name  string
	kind  schema.GroupVersionKind
	verbs []string
}

// subresources lists what a resource offers under {name}/….
func subresources(res *resources.Resource) []subresource {
	gvk := res.GroupVersionKind()
	var subs []subresource
	if res.HasStatus {
		subs = append(subs, subresource{"status", gvk, []string{"get", "patch", "update"}})
	}
	if res.Scale != nil {
		subs = append(subs, subresource{"scale", scaleGVK, []string{"get", "patch", "update"}})
	}
	for _, sub := range res.Subresources {
		subs = append(subs, subresource{sub.Name, gvk, []string{"get", "patch", "update"}})
	}
	core := func(kind string) schema.GroupVersionKind { return schema.GroupVersionKind{Version: "v1", Kind: kind} }
	switch res.GVR.GroupResource() {
	case schema.GroupResource{Resource: "pods"}:
		subs = append(subs,
			subresource{"binding", core("Binding"), []string{"create"}},
			subresource{"eviction", schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, []string{"create"}},
			subresource{"log", core("Pod"), []string{"get"}},
			subresource{"exec", core("PodExecOptions"), []string{"create", "get"}},
			subresource{"attach", core("PodAttachOptions"), []string{"create", "get"}},
			subresource{"portforward", core("PodPortForwardOptions"), []string{"create", "get"}},
		)
	case schema.GroupResource{Resource: "namespaces"}:
		subs = append(subs, subresource{"finalize", core("Namespace"), []string{"update"}})
	case schema.GroupResource{Resource: "serviceaccounts"}:
		subs = append(subs, subresource{"token", schema.GroupVersionKind{Group: "authentication.k8s.io", Version: "v1", Kind: "TokenRequest"}, []string{"create"}})
	}
	return subs
}

// groupVersions returns the served group versions, core first, in registration order.
func (s *Server) groupVersions() []schema.GroupVersion {
	var out []schema.GroupVersion
	seen := map[schema.GroupVersion]bool{}
	for _, r := range s.reg.All() {
		gv := r.GVR.GroupVersion()
		if !seen[gv] {
			seen[gv] = true
			out = append(out, gv)
		}
	}
	return out
}

func (s *Server) resourcesOf(gv schema.GroupVersion) []*resources.Resource {
	var out []*resources.Resource
	for _, r := range s.reg.All() {
		if r.GVR.GroupVersion() == gv {
			out = append(out, r)
		}
	}
	return out
}

// serveResourceList serves /api/v1 and /apis/{group}/{version}.
func (s *Server) serveResourceList(w http.ResponseWriter, r *http.Request, gv schema.GroupVersion) {
	rs := s.resourcesOf(gv)
	if len(rs) == 0 {
		s.writeError(w, r, errNotFoundPath(r.URL.Path), nil)
		return
	}
	list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
	for _, res := range rs {
		list.APIResources = append(list.APIResources, metav1.APIResource{
			Name: res.GVR.Resource, SingularName: res.SingularName, Namespaced: res.Namespaced, Kind: res.Kind,
			Verbs: verbsOf(res), ShortNames: res.ShortNames, Categories: res.Categories,
		})
		for _, sub := range subresources(res) {
			list.APIResources = append(list.APIResources, metav1.APIResource{
				Name: res.GVR.Resource + "/" + sub.name, Namespaced: res.Namespaced,
				Group: sub.kind.Group, Version: sub.kind.Version, Kind: sub.kind.Kind, Verbs: sub.verbs,
			})
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// aggregatedVersion returns the apidiscovery version a client asks for
// ("v2" or "v2beta1"), or "" for the legacy documents.
func aggregatedVersion(r *http.Request) string {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "application/json" {
			continue
		}
		if params["g"] == "apidiscovery.k8s.io" && params["as"] == "APIGroupDiscoveryList" && (params["v"] == "v2" || params["v"] == "v2beta1") {
			return params["v"]
		}
		if params["g"] == "" {
			return "" // the client prefers the legacy documents
		}
	}
	return ""
}

func (s *Server) aggregated(core bool) *apidiscoveryv2.APIGroupDiscoveryList {
	var order []string
	byGroup := map[string]*apidiscoveryv2.APIGroupDiscovery{}
	for _, gv := range s.groupVersions() {
		if (gv.Group == "") != core {
			continue
		}
		g, ok := byGroup[gv.Group]
		if !ok {
			g = &apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: gv.Group}}
			byGroup[gv.Group] = g
			order = append(order, gv.Group)
		}
		v := apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		for _, res := range s.resourcesOf(gv) {
			scope := apidiscoveryv2.ScopeCluster
			if res.Namespaced {
				scope = apidiscoveryv2.ScopeNamespace
			}
			gvk := res.GroupVersionKind()
			d := apidiscoveryv2.APIResourceDiscovery{
				Resource: res.GVR.Resource, Scope: scope, SingularResource: res.SingularName, Verbs: verbsOf(res),
				ShortNames: res.ShortNames, Categories: res.Categories,
				ResponseKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			}
			for _, sub := range subresources(res) {
				d.Subresources = append(d.Subresources, apidiscoveryv2.APISubresourceDiscovery{
					Subresource:  sub.name,
					ResponseKind: &metav1.GroupVersionKind{Group: sub.kind.Group, Version: sub.kind.Version, Kind: sub.kind.Kind},
					Verbs:        sub.verbs,
				})
			}
			v.Resources = append(v.Resources, d)
		}
		g.Versions = append(g.Versions, v)
	}
	list := &apidiscoveryv2.APIGroupDiscoveryList{}
	for _, name := range order {
		list.Items = append(list.Items, *byGroup[name])
	}
	return list
}

func (s *Server) writeAggregated(w http.ResponseWriter, version string, core bool) {
	list := s.aggregated(core)
	list.APIVersion, list.Kind = "apidiscovery.k8s.io/"+version, "APIGroupDiscoveryList"
	w.Header().Set("Vary", "Accept")
	data := mustJSON(list)
	w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v="+version+";as=APIGroupDiscoveryList")
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

// serveLegacyDiscovery serves /api.
func (s *Server) serveLegacyDiscovery(w http.ResponseWriter, r *http.Request) {
	if v := aggregatedVersion(r); v != "" {
		s.writeAggregated(w, v, true)
		return
	}
	writeJSON(w, http.StatusOK, &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: s.cfg.ExternalAddress}},
	})
}

// serveGroupDiscovery serves /apis.
func (s *Server) serveGroupDiscovery(w http.ResponseWriter, r *http.Request) {
	if v := aggregatedVersion(r); v != "" {
		s.writeAggregated(w, v, false)
		return
	}
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}}
	list.Groups = append(list.Groups, s.apiGroups()...)
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) apiGroups() []metav1.APIGroup {
	var groups []metav1.APIGroup
	idx := map[string]int{}
	for _, gv := range s.groupVersions() {
		if gv.Group == "" {
			continue
		}
		vd := metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version}
		i, ok := idx[gv.Group]
		if !ok {
			idx[gv.Group] = len(groups)
			groups = append(groups, metav1.APIGroup{Name: gv.Group, PreferredVersion: vd})
			i = len(groups) - 1
		}
		groups[i].Versions = append(groups[i].Versions, vd)
	}
	return groups
}

// serveGroup serves /apis/{group}.
func (s *Server) serveGroup(w http.ResponseWriter, r *http.Request, group string) {
	for _, g := range s.apiGroups() {
		if g.Name == group {
			g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
			writeJSON(w, http.StatusOK, &g)
			return
		}
	}
	s.writeError(w, r, errNotFoundPath(r.URL.Path), nil)
}
