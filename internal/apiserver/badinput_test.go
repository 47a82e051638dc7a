package apiserver_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/testserver"
)

// api is a raw HTTP client for one test server, so tests control every byte sent.
type api struct {
	t     *testing.T
	base  string
	token string
	c     *http.Client
}

func newAPI(t *testing.T, s *testserver.Server) *api {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.Loopback.TLSClientConfig.CAData)
	return &api{t: t, base: s.URL, token: s.Loopback.BearerToken,
		c: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func (a *api) do(method, path, contentType string, body []byte) (int, metav1.Status, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var st metav1.Status
	json.Unmarshal(data, &st)
	return resp.StatusCode, st, data
}

func startAPIOnly(t *testing.T) *testserver.Server {
	return testserver.Start(t, func(o *controlplane.Options) { o.DisableControllers = true })
}

const (
	pods        = "/api/v1/namespaces/default/pods"
	deployments = "/apis/apps/v1/namespaces/default/deployments"
)

func podJSON(name, image, extra string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q},"spec":{"containers":[{"name":"c","image":%q}]%s}}`, name, image, extra)
}

func deploymentJSON(name string, replicas int, selector, labels string) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q},"spec":{"replicas":%d,
"selector":{"matchLabels":{"app":%q}},"template":{"metadata":{"labels":{"app":%q}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`,
		name, replicas, selector, labels)
}

// TestBadInputIsRejectedAndNothingStored sends malformed or invalid objects
// and checks the status code, that the error names the problem, and that
// nothing was stored.
func TestBadInputIsRejectedAndNothingStored(t *testing.T) {
	s := startAPIOnly(t)
	a := newAPI(t, s)
	big := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 4<<20) + `"}}`
	cases := []struct {
		name, method, path, body string
		query                    string
		code                     int
		reason                   metav1.StatusReason
		field                    string // a cause on this field, for 422s
		message                  string // substring of the message
		stored                   string // must not exist afterwards
	}{
		{name: "missing name", method: "POST", path: "/api/v1/namespaces/default/configmaps",
			body: `{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}`, code: 422, reason: metav1.StatusReasonInvalid, field: "metadata.name"},
		{name: "name not a DNS label", method: "POST", path: "/api/v1/namespaces",
			body: `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"Bad_NS"}}`, code: 422, reason: metav1.StatusReasonInvalid, field: "metadata.name", stored: "/api/v1/namespaces/Bad_NS"},
		{name: "bad image reference", method: "POST", path: pods, body: podJSON("badimage", "nginx:::1", ""),
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.containers[0].image", stored: pods + "/badimage"},
		{name: "negative replicas", method: "POST", path: deployments, body: deploymentJSON("neg", -1, "a", "a"),
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.replicas", stored: deployments + "/neg"},
		{name: "selector does not match template", method: "POST", path: deployments, body: deploymentJSON("mismatch", 1, "a", "b"),
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.template.metadata.labels", stored: deployments + "/mismatch"},
		{name: "unknown field, strict", method: "POST", path: pods, query: "?fieldValidation=Strict",
			body: podJSON("strict", "nginx", `,"foo":"bar"`), code: 400, reason: metav1.StatusReasonBadRequest,
			message: `unknown field "spec.foo"`, stored: pods + "/strict"},
		{name: "duplicate field, strict", method: "POST", path: pods, query: "?fieldValidation=Strict",
			body: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup","name":"dup"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`,
			code: 400, reason: metav1.StatusReasonBadRequest, message: `duplicate field "metadata.name"`, stored: pods + "/dup"},
		{name: "body over the size limit", method: "POST", path: "/api/v1/namespaces/default/configmaps", body: big,
			code: 413, reason: metav1.StatusReasonRequestEntityTooLarge, stored: "/api/v1/namespaces/default/configmaps/big"},
		{name: "malformed JSON", method: "POST", path: pods, body: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"`,
			code: 400, reason: metav1.StatusReasonBadRequest, stored: pods + "/x"},
		{name: "empty body", method: "POST", path: pods, body: ``, code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "kind does not match URL", method: "POST", path: "/api/v1/namespaces/default/configmaps", body: podJSON("wrongkind", "nginx", ""),
			code: 400, reason: metav1.StatusReasonBadRequest, stored: pods + "/wrongkind"},
		{name: "namespace does not match URL", method: "POST", path: pods,
			body: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"ns","namespace":"other"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}`,
			code: 400, reason: metav1.StatusReasonBadRequest, stored: pods + "/ns"},
		{name: "namespace does not exist", method: "POST", path: "/api/v1/namespaces/nowhere/pods", body: podJSON("lost", "nginx", ""),
			code: 404, reason: metav1.StatusReasonNotFound, message: `namespaces "nowhere" not found`},
		{name: "container without name", method: "POST", path: pods,
			body: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"noname"},"spec":{"containers":[{"image":"nginx"}]}}`,
			code: 422, reason: metav1.StatusReasonInvalid, field: "spec.containers[0].name", stored: pods + "/noname"},
		{name: "bad label selector", method: "GET", path: pods, query: "?labelSelector=a%3D%3D%3Db", code: 400, reason: metav1.StatusReasonBadRequest},
		{name: "unsupported field selector", method: "GET", path: pods, query: "?fieldSelector=spec.image%3Dx",
			code: 400, reason: metav1.StatusReasonBadRequest, message: "field label not supported: spec.image"},
		{name: "unknown resource", method: "GET", path: "/api/v1/namespaces/default/gadgets", code: 404, reason: metav1.StatusReasonNotFound},
		{name: "apply without a field manager", method: "PATCH", path: deployments + "/x", body: "{}",
			code: 422, reason: metav1.StatusReasonInvalid, field: "fieldManager", stored: deployments + "/x"},
		{name: "apply of another kind", method: "PATCH", path: deployments + "/x", query: "?fieldManager=t",
			body: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n", code: 400, reason: metav1.StatusReasonBadRequest, stored: deployments + "/x"},
		{name: "apply of another name", method: "PATCH", path: deployments + "/x", query: "?fieldManager=t",
			body: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: y\n", code: 400, reason: metav1.StatusReasonBadRequest, stored: deployments + "/x"},
		{name: "apply of malformed YAML", method: "PATCH", path: deployments + "/x", query: "?fieldManager=t",
			body: "apiVersion: [", code: 400, reason: metav1.StatusReasonBadRequest, stored: deployments + "/x"},
		{name: "apply with managed fields", method: "PATCH", path: deployments + "/x", query: "?fieldManager=t",
			body: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n  managedFields: [{manager: a}]\n", code: 400, reason: metav1.StatusReasonBadRequest, stored: deployments + "/x"},
		{name: "apply of an invalid object", method: "PATCH", path: deployments + "/x", query: "?fieldManager=t",
			body: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  replicas: -1\n", code: 422, reason: metav1.StatusReasonInvalid, stored: deployments + "/x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := "application/json"
			if tc.method == "PATCH" {
				ct = "application/apply-patch+yaml"
			}
			code, st, raw := a.do(tc.method, tc.path+tc.query, ct, []byte(tc.body))
			if code != tc.code {
				t.Fatalf("code %d, want %d: %s", code, tc.code, truncate(raw))
			}
			if tc.reason != "" && st.Reason != tc.reason {
				t.Errorf("reason %q, want %q: %s", st.Reason, tc.reason, st.Message)
			}
			if tc.message != "" && !strings.Contains(st.Message, tc.message) {
				t.Errorf("message %q does not mention %q", st.Message, tc.message)
			}
			if tc.field != "" && !hasCause(st, tc.field) {
				t.Errorf("no cause on field %s: %+v", tc.field, st.Details)
			}
			if tc.stored != "" {
				if code, _, _ := a.do("GET", tc.stored, "", nil); code != http.StatusNotFound {
					t.Errorf("GET %s after the rejected write: %d, want 404", tc.stored, code)
				}
			}
		})
	}
}

func hasCause(st metav1.Status, field string) bool {
	if st.Details == nil {
		return false
	}
	for _, c := range st.Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

func TestUnauthenticatedRequestsAreRefused(t *testing.T) {
	s := startAPIOnly(t)
	cases := []struct {
		name, token, path string
		code              int
	}{
		{"no token", "", "/api/v1/namespaces/default/pods", 401},
		{"wrong token", "not-a-token", "/api/v1/namespaces/default/pods", 401},
		{"wrong token on discovery", "not-a-token", "/apis", 401},
		{"wrong token on version", "", "/version", 401},
		{"health needs no token", "", "/healthz", 200},
		{"readiness needs no token", "", "/readyz", 200},
		{"right token", s.Loopback.BearerToken, "/api/v1/namespaces/default/pods", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAPI(t, s)
			a.token = tc.token
			code, st, raw := a.do("GET", tc.path, "", nil)
			if code != tc.code {
				t.Fatalf("code %d, want %d: %s", code, tc.code, truncate(raw))
			}
			if code == 401 && st.Reason != metav1.StatusReasonUnauthorized {
				t.Errorf("reason %q, want Unauthorized", st.Reason)
			}
		})
	}
}

func TestBodyFormats(t *testing.T) {
	s := startAPIOnly(t)
	a := newAPI(t, s)
	cases := []struct{ name, contentType, body string }{
		{"yaml", "application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n"},
		{"json", "application/json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"from-json"},"data":{"k":"v"}}`},
		{"json without kind", "application/json", `{"metadata":{"name":"bare"},"data":{"k":"v"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, raw := a.do("POST", "/api/v1/namespaces/default/configmaps", tc.contentType, []byte(tc.body))
			if code != http.StatusCreated {
				t.Fatalf("code %d: %s", code, truncate(raw))
			}
		})
	}
}
