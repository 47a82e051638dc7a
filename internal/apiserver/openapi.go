package apiserver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The OpenAPI v3 documents are small on purpose: per group version, one
// PATCH operation per kind that names the kind and the fieldValidation
// parameter. That is what kubectl looks for to validate on the server
// (fieldValidation=Strict) rather than on the client. The operations list
// JSON and merge patch bodies but not strategic merge: kubectl then
// computes apply's strategic merge patches from its compiled-in types,
// which carry the full patch metadata a stub schema would lack.

type openAPIDocs struct {
	once  sync.Once
	index []byte
	docs  map[string][]byte // "api/v1", "apis/apps/v1"
}

func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

func (s *Server) openAPI() *openAPIDocs {
	d := &s.openapi
	d.once.Do(func() {
		d.docs = map[string][]byte{}
		paths := map[string]any{}
		for _, gv := range s.groupVersions() {
			doc := s.openAPIDoc(gv)
			p := gvPath(gv)
			d.docs[p] = doc
			sum := sha256.Sum256(doc)
			paths[p] = map[string]string{"serverRelativeURL": "/openapi/v3/" + p + "?hash=" + strings.ToUpper(hex.EncodeToString(sum[:]))}
		}
		d.index = mustJSON(map[string]any{"paths": paths})
	})
	return d
}

func (s *Server) openAPIDoc(gv schema.GroupVersion) []byte {
	paths := map[string]any{}
	for _, res := range s.resourcesOf(gv) {
		gvk := res.GroupVersionKind()
		p := "/" + gvPath(gv) + "/"
		if res.Namespaced {
			p += "namespaces/{namespace}/"
		}
		p += res.GVR.Resource + "/{name}"
		body := map[string]any{"schema": map[string]any{"type": "object"}}
		paths[p] = map[string]any{
			"patch": map[string]any{
				"operationId":                     "patch" + gvk.Kind,
				"x-kubernetes-group-version-kind": map[string]string{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind},
				"x-kubernetes-action":             "patch",
				"parameters": []map[string]any{
					{"name": "fieldValidation", "in": "query", "schema": map[string]string{"type": "string"}},
					{"name": "dryRun", "in": "query", "schema": map[string]string{"type": "string"}},
				},
				"requestBody": map[string]any{"content": map[string]any{
					"application/json-patch+json":  body,
					"application/merge-patch+json": body,
				}},
				"responses": map[string]any{"200": map[string]any{"description": "OK"}},
			},
		}
	}
	return mustJSON(map[string]any{
		"openapi":    "3.0.0",
		"info":       map[string]string{"title": "Wharf", "version": s.cfg.Version.GitVersion},
		"paths":      paths,
		"components": map[string]any{"schemas": map[string]any{}},
	})
}

func (s *Server) serveOpenAPIIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(s.openAPI().index)
}

func (s *Server) serveOpenAPIGroup(w http.ResponseWriter, r *http.Request) {
	doc, ok := s.openAPI().docs[strings.TrimPrefix(r.URL.Path, "/openapi/v3/")]
	if !ok {
		s.writeError(w, r, errNotFoundPath(r.URL.Path), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("hash") != "" {
		// The URL names the content: clients may keep it for good.
		w.Header().Set("Cache-Control", "public, immutable")
	}
	w.Write(doc)
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on values built here
	}
	return data
}
