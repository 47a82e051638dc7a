package apiserver

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// The OpenAPI documents describe every kind the server serves: the
// schemas of its Go types (internal/openapi) and a path per verb, with
// the query parameters kubectl looks for (fieldValidation: kubectl then
// validates on the server rather than on the client). /openapi/v3 has one
// document per group version; /openapi/v2, which kubectl 1.27 and 1.28
// need for apply and create, has them all, in JSON or protobuf.
//
// PATCH operations list strategic merge patches: kubectl then computes
// apply's patches from these schemas' x-kubernetes-patch-strategy and
// x-kubernetes-patch-merge-key, which come from the same struct tags its
// compiled-in types would give it.
//
// The documents are built on the first request after a change (the
// registry's kinds are fixed; kinds added at run time come through
// SetOpenAPIKind) and served from memory, with upstream's caching: an
// ETag on everything, and immutable caching of a v3 document asked for
// by the hash the index gives.

// OpenAPIKind is a kind added at run time (a custom resource), for the
// OpenAPI documents.
type OpenAPIKind struct {
	GVK schema.GroupVersionKind
	// Resource is the plural resource name, e.g. "crontabs".
	Resource   string
	Namespaced bool
	// Status adds the /status subresource's operations.
	Status bool
	// Schema is the kind's schema (apiVersion, kind and metadata are
	// added when missing); or SchemaJSON, the JSON of an apiextensions v1
	// JSONSchemaProps (a CRD version's openAPIV3Schema).
	Schema     *spec.Schema
	SchemaJSON []byte
}

type openAPIDocs struct {
	mu    sync.Mutex
	kinds map[schema.GroupVersionKind]*runtimeKind
	cur   *openAPISnapshot // nil: build on the next request
}

// runtimeKind is an OpenAPIKind with its schema as JSON, to copy from.
type runtimeKind struct {
	OpenAPIKind
	schema []byte
}

// SetOpenAPIKind adds a kind to the OpenAPI documents, or replaces it;
// the next request for a document sees it.
func (s *Server) SetOpenAPIKind(k OpenAPIKind) error {
	if k.GVK.Version == "" || k.GVK.Kind == "" || k.Resource == "" {
		return fmt.Errorf("openapi kind %v: version, kind and resource are required", k.GVK)
	}
	data := k.SchemaJSON
	if k.Schema != nil {
		var err error
		if data, err = json.Marshal(k.Schema); err != nil {
			return fmt.Errorf("openapi kind %v: %w", k.GVK, err)
		}
	}
	if len(data) == 0 {
		data = []byte(`{"type":"object","x-kubernetes-preserve-unknown-fields":true}`)
	}
	var check spec.Schema
	if err := json.Unmarshal(data, &check); err != nil {
		return fmt.Errorf("openapi kind %v: schema: %w", k.GVK, err)
	}
	k.Schema, k.SchemaJSON = nil, nil
	d := &s.openapi
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kinds == nil {
		d.kinds = map[schema.GroupVersionKind]*runtimeKind{}
	}
	d.kinds[k.GVK] = &runtimeKind{OpenAPIKind: k, schema: data}
	d.cur = nil
	return nil
}

// RemoveOpenAPIKind removes a kind added with SetOpenAPIKind.
func (s *Server) RemoveOpenAPIKind(gvk schema.GroupVersionKind) {
	d := &s.openapi
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.kinds[gvk]; ok {
		delete(d.kinds, gvk)
		d.cur = nil
	}
}

// InvalidateOpenAPI drops the built documents: the next request rebuilds them.
func (s *Server) InvalidateOpenAPI() {
	d := &s.openapi
	d.mu.Lock()
	d.cur = nil
	d.mu.Unlock()
}

// openAPISnapshot is one consistent set of documents.
type openAPISnapshot struct {
	index  *servedDoc
	groups map[string]*servedDoc // by path: "api/v1", "apis/apps/v1"
	// v2 is built on its first request: only kubectl 1.27 and 1.28 and
	// old clients ask for it, and it is the largest.
	v2 func() (*v2Docs, error)
}

// v2Docs are the v2 document in JSON and in protobuf.
type v2Docs struct{ json, proto *servedDoc }

func (s *Server) openAPI() *openAPISnapshot {
	d := &s.openapi
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == nil {
		d.cur = s.buildOpenAPI(s.openAPIKinds(d.kinds))
	}
	return d.cur
}

func gvPath(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "api/" + gv.Version
	}
	return "apis/" + gv.Group + "/" + gv.Version
}

func (s *Server) buildOpenAPI(kinds []apiKind) *openAPISnapshot {
	snap := &openAPISnapshot{groups: map[string]*servedDoc{}}
	byGV := map[schema.GroupVersion][]apiKind{}
	var gvs []schema.GroupVersion
	for _, k := range kinds {
		gv := k.gvk.GroupVersion()
		if _, ok := byGV[gv]; !ok {
			gvs = append(gvs, gv)
		}
		byGV[gv] = append(byGV[gv], k)
	}
	paths := map[string]any{}
	for _, gv := range gvs {
		p := gvPath(gv)
		doc := newServedDoc(mustJSON(s.openAPIV3(byGV[gv])))
		snap.groups[p] = doc
		paths[p] = map[string]string{"serverRelativeURL": hashURL(p, doc.hash)}
	}
	snap.index = newServedDoc(mustJSON(map[string]any{"paths": paths}))
	snap.v2 = sync.OnceValues(func() (*v2Docs, error) {
		data := mustJSON(s.openAPIV2(kinds))
		pb, err := v2Proto(data)
		if err != nil {
			return nil, err
		}
		js := newServedDoc(data)
		// The protobuf has the JSON's ETag, as upstream: Vary: Accept
		// keeps caches apart.
		return &v2Docs{js, withHash(pb, js.hash)}, nil
	})
	return snap
}

func hashURL(gvPath, hash string) string {
	return "/openapi/v3/" + gvPath + "?" + url.Values{"hash": {hash}}.Encode()
}

// servedDoc is one document's bytes with their hash, gzipped on demand.
type servedDoc struct {
	data []byte
	hash string // upper-case hex SHA-512, upstream's ETag
	gz   func() []byte
}

func newServedDoc(data []byte) *servedDoc {
	sum := sha512.Sum512(data)
	return withHash(data, strings.ToUpper(hex.EncodeToString(sum[:])))
}

func withHash(data []byte, hash string) *servedDoc {
	return &servedDoc{data: data, hash: hash, gz: sync.OnceValue(func() []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
		zw.Write(data)
		zw.Close()
		return b.Bytes()
	})}
}

// serve writes the document with its ETag; a matching If-None-Match gets 304.
func (d *servedDoc) serve(w http.ResponseWriter, r *http.Request, contentType string) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Etag", strconv.Quote(d.hash))
	h.Add("Vary", "Accept-Encoding")
	body := d.data
	if acceptsGzip(r) && len(body) > 1024 {
		body = d.gz()
		h.Set("Content-Encoding", "gzip")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func (s *Server) serveOpenAPIIndex(w http.ResponseWriter, r *http.Request) {
	s.openAPI().index.serve(w, r, "application/json")
}

func (s *Server) serveOpenAPIGroup(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/openapi/v3/")
	doc, ok := s.openAPI().groups[p]
	if !ok {
		s.writeError(w, r, errNotFoundPath(r.URL.Path), nil)
		return
	}
	if hash := r.URL.Query().Get("hash"); hash != "" {
		if hash != doc.hash {
			// An old hash: the current document is elsewhere.
			http.Redirect(w, r, hashURL(p, doc.hash), http.StatusMovedPermanently)
			return
		}
		// The URL names the content: clients may keep it for good.
		w.Header().Set("Cache-Control", "public, immutable")
		w.Header().Set("Expires", time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat))
	}
	w.Header().Set("Vary", "Accept")
	doc.serve(w, r, "application/json")
}

// The media types of the v2 document in protobuf (upstream accepts both
// spellings and answers with the second).
const (
	mimeV2ProtoOld = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
	mimeV2Proto    = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
)

func (s *Server) serveOpenAPIV2(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "Accept")
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	docs, err := s.openAPI().v2()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("openapi v2: %w", err), nil)
		return
	}
	for part := range strings.SplitSeq(accept, ",") {
		// Not mime.ParseMediaType: "@" is no token character.
		mt, params, _ := strings.Cut(part, ";")
		if strings.ReplaceAll(params, " ", "") == "q=0" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(mt)) {
		case mimeV2Proto, mimeV2ProtoOld:
			docs.proto.serve(w, r, mimeV2Proto)
			return
		case "application/json", "application/*", "*/*":
			docs.json.serve(w, r, "application/json")
			return
		}
	}
	http.Error(w, "not acceptable: "+accept, http.StatusNotAcceptable)
}

func mustJSON(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on values built here
	}
	return data
}
