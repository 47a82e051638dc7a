package resources

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/json"
)

// fuzzResource decodes arbitrary JSON into r's type and runs every hook the
// apiserver runs. Nothing may panic; defaulting must be idempotent; a valid
// object must be a valid update of itself and stay valid through JSON.
func fuzzResource(t *testing.T, r *Resource, data []byte) {
	obj := r.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return
	}
	r.Default(obj)
	again := obj.DeepCopyObject()
	r.Default(again)
	if !equality.Semantic.DeepEqual(obj, again) {
		t.Fatalf("defaulting is not idempotent:\n%s", cmp.Diff(obj, again, quantityComparer))
	}
	errs := r.Validate(obj)
	_ = r.Row(obj)
	_ = r.SelectableFields(obj)
	if r.PrepareForCreate != nil {
		r.PrepareForCreate(obj.DeepCopyObject())
	}
	if r.ValidateStatus != nil {
		_ = r.ValidateStatus(obj, obj.DeepCopyObject())
	}
	if r.PrepareForUpdate != nil {
		r.PrepareForUpdate(obj.DeepCopyObject(), obj)
	}
	if r.Scale != nil {
		_, _, _ = r.Scale.Get(obj)
	}
	if len(errs) > 0 {
		return
	}
	if errs := r.ValidateUpdate(obj, obj.DeepCopyObject()); len(errs) > 0 {
		t.Fatalf("an unchanged object is an invalid update of itself:\n%s", errList(errs))
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("marshal a valid object: %v", err)
	}
	back := r.New()
	if err := json.Unmarshal(b, back); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if errs := r.Validate(back); len(errs) > 0 {
		t.Fatalf("valid object is invalid after a JSON round trip:\n%s\n%s", b, errList(errs))
	}
}

var quantityComparer = cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })

const (
	seedPod = `{"metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},` +
		`"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","ports":[{"containerPort":80}],` +
		`"resources":{"limits":{"cpu":"500m","memory":"128Mi"}},` +
		`"livenessProbe":{"httpGet":{"port":80}},"volumeMounts":[{"name":"data","mountPath":"/data"}]}],` +
		`"volumes":[{"name":"data"}],"tolerations":[{"key":"k","operator":"Exists","effect":"NoExecute","tolerationSeconds":5}]}}`
	seedDeployment = `{"metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3,` +
		`"selector":{"matchLabels":{"app":"web"}},"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":"10%"}},` +
		`"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"registry:5000/web@sha256:` +
		hex64 + `"}]}}}}`
)

func FuzzPod(f *testing.F) {
	f.Add([]byte(seedPod))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzResource(t, Pods(), data) })
}

func FuzzDeployment(f *testing.F) {
	f.Add([]byte(seedDeployment))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzResource(t, Deployments(), data) })
}

func FuzzService(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"web","namespace":"default"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":"http","nodePort":30080}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzResource(t, Services(), data) })
}
