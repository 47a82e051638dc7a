package apiserver

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"wharf.dev/wharf/internal/resources"
)

func fuzzServer(f *testing.F) *Server {
	reg, err := resources.NewRegistry(resources.NewScheme())
	if err != nil {
		f.Fatal(err)
	}
	return New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: reg, Admission: DefaultAdmission()})
}

var fuzzContentTypes = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "text/plain"}

// FuzzDecode feeds arbitrary bodies through what a create does before
// storage: decode (strict and not), server-owned fields, defaults and
// validation. Nothing may panic, whatever the bytes.
func FuzzDecode(f *testing.F) {
	s := fuzzServer(f)
	all := s.reg.All()
	seeds := []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`,
		`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`,
		"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n",
		`{"metadata":{"name":"x","name":"y"}}`,
		"k8s\x00\x0a\x04\x0a\x02v1",
		`{`,
	}
	for i, seed := range seeds {
		f.Add(uint8(i), uint8(i%len(fuzzContentTypes)), []byte(seed), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, resIdx, ctIdx uint8, body []byte, strict bool) {
		res := all[int(resIdx)%len(all)]
		r := httptest.NewRequest("POST", "/api/v1/namespaces/default/"+res.GVR.Resource, bytes.NewReader(body))
		r.Header.Set("Content-Type", fuzzContentTypes[int(ctIdx)%len(fuzzContentTypes)])
		if strict {
			r.URL.RawQuery = "fieldValidation=Strict"
		}
		obj := res.New()
		if err := s.decodeBody(httptest.NewRecorder(), r, body, obj, res.GroupVersionKind()); err != nil {
			return
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			t.Fatalf("decoded %T has no metadata: %v", obj, err)
		}
		req := &request{verb: "create", gvr: res.GVR, namespace: "default", name: m.GetName(), res: res}
		s.prepareCreate(req, obj, m)
		s.validate(context.Background(), req, obj, nil, mainWrite)
		cur := obj.DeepCopyObject()
		if err := s.prepareUpdate(req, obj, cur, mainWrite); err == nil {
			s.validate(context.Background(), req, obj, cur, mainWrite)
		}
	})
}

// FuzzPatch applies arbitrary patches of each type to a valid deployment
// and validates the result: errors are fine, panics are not.
func FuzzPatch(f *testing.F) {
	s := fuzzServer(f)
	res, _ := s.reg.Get(schemaGVR("apps", "v1", "deployments"))
	base := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"default","resourceVersion":"5","uid":"u"},"spec":{"replicas":2,"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"nginx"},{"name":"d","image":"busybox"}]}}}}`
	f.Add(uint8(0), []byte(`[{"op":"replace","path":"/spec/replicas","value":3}]`))
	f.Add(uint8(1), []byte(`{"spec":{"replicas":null,"template":{"spec":{"containers":[]}}}}`))
	f.Add(uint8(2), []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","$patch":"delete"}]}}}}`))
	f.Add(uint8(2), []byte(`{"metadata":{"$setElementOrder/finalizers":["x"],"finalizers":["x"]}}`))
	f.Add(uint8(0), []byte(`[{"op":"move","from":"/spec","path":"/spec/template"}]`))
	patchTypes := []types.PatchType{types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType}
	f.Fuzz(func(t *testing.T, pt uint8, patch []byte) {
		cur := res.New()
		r := httptest.NewRequest("PATCH", "/apis/apps/v1/namespaces/default/deployments/d", nil)
		if err := s.decodeWith(httptest.NewRecorder(), r, mustSerializer(s), []byte(base), cur, res.GroupVersionKind()); err != nil {
			t.Fatal(err)
		}
		obj := res.New()
		if err := s.patchObject(httptest.NewRecorder(), r, patchTypes[int(pt)%len(patchTypes)], patch, cur, obj); err != nil {
			return
		}
		req := &request{verb: "patch", gvr: res.GVR, namespace: "default", name: "d", res: res}
		if err := s.prepareUpdate(req, obj, cur, mainWrite); err == nil {
			s.validate(context.Background(), req, obj, cur, mainWrite)
		}
	})
}

func schemaGVR(g, v, r string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: g, Version: v, Resource: r}
}

func mustSerializer(s *Server) runtime.SerializerInfo {
	info, _ := s.serializerFor("application/json")
	return info
}
