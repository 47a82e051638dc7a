package apiserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests"

// requestPEM is a PEM certificate request of a new key for cn in orgs.
func requestPEM(t *testing.T, cn string, orgs ...string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func newCSR(name string, request []byte, signer string) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request: request, SignerName: signer, Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
		},
	}
}

func approve(csr *certificatesv1.CertificateSigningRequest) *certificatesv1.CertificateSigningRequest {
	csr = csr.DeepCopy()
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved by the test",
	})
	return csr
}

// Bad requests are refused with 422 naming the field, and nothing is stored.
func TestCertificateSigningRequestBadInput(t *testing.T) {
	s := startAPIOnly(t)
	a := newAPI(t, s)
	good := string(requestPEM(t, "alice"))
	body := func(name, request, signer, usages, extra string) string {
		req, _ := json.Marshal([]byte(request))
		return fmt.Sprintf(`{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":%q},
"spec":{"request":%s,"signerName":%q,"usages":%s%s}}`, name, req, signer, usages, extra)
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"request not PEM", body("notpem", "hello", "kubernetes.io/kube-apiserver-client", `["client auth"]`, ""), "spec.request"},
		{"no usages", body("nousages", good, "kubernetes.io/kube-apiserver-client", `[]`, ""), "spec.usages"},
		{"unknown usage", body("badusage", good, "kubernetes.io/kube-apiserver-client", `["root"]`, ""), "spec.usages[0]"},
		{"no signer", body("nosigner", good, "", `["client auth"]`, ""), "spec.signerName"},
		{"signer without a path", body("badsigner", good, "example.com", `["client auth"]`, ""), "spec.signerName"},
		{"too short", body("short", good, "kubernetes.io/kube-apiserver-client", `["client auth"]`, `,"expirationSeconds":60`), "spec.expirationSeconds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, st, raw := a.do("POST", csrs, "application/json", []byte(tc.body))
			if code != http.StatusUnprocessableEntity || st.Reason != metav1.StatusReasonInvalid || !hasCause(st, tc.field) {
				t.Fatalf("code %d, reason %s, want 422 naming %s: %s", code, st.Reason, tc.field, truncate(raw))
			}
			var obj metav1.PartialObjectMetadata
			json.Unmarshal([]byte(tc.body), &obj)
			if code, _, _ := a.do("GET", csrs+"/"+obj.Name, "", nil); code != http.StatusNotFound {
				t.Errorf("GET after the refused create: %d, want 404", code)
			}
		})
	}
}

// The server records who asks, keeps the spec, lets only approvers of the
// signer approve, and never takes approval through /status.
func TestCertificateSigningRequestSemantics(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	admin := s.Client.CertificatesV1().CertificateSigningRequests()
	// alice may create and read requests (system:node-bootstrapper), not approve them.
	if _, err := s.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-requests"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-bootstrapper"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "alice"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	alice := as(t, s, "alice", "devs").CertificatesV1().CertificateSigningRequests()
	sent := newCSR("alice-1", requestPEM(t, "alice", "devs"), certificatesv1.KubeAPIServerClientSignerName)
	sent.Spec.Username, sent.Spec.Groups = "root", []string{"system:masters"}
	sent.Status.Conditions = approve(sent).Status.Conditions
	var created *certificatesv1.CertificateSigningRequest
	testserverWait(t, "alice's binding to count", func() (err error) {
		created, err = alice.Create(ctx, sent, metav1.CreateOptions{})
		return err
	})
	if created.Spec.Username != "alice" || !slices.Contains(created.Spec.Groups, "devs") || !slices.Contains(created.Spec.Groups, "system:authenticated") ||
		slices.Contains(created.Spec.Groups, "system:masters") {
		t.Errorf("requestor %q in %v, want alice in devs and system:authenticated (what she sent ignored)", created.Spec.Username, created.Spec.Groups)
	}
	if len(created.Status.Conditions) != 0 {
		t.Errorf("created with conditions %v", created.Status.Conditions)
	}

	// The spec does not change after create.
	edit := created.DeepCopy()
	edit.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth}
	edit.Labels = map[string]string{"team": "devs"}
	updated, err := admin.Update(ctx, edit, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(updated.Spec.Usages, created.Spec.Usages) || updated.Labels["team"] != "devs" {
		t.Errorf("after an update: usages %v (want %v), labels %v", updated.Spec.Usages, created.Spec.Usages, updated.Labels)
	}

	// Approval is /approval's, for those who may approve the signer.
	if _, err := admin.UpdateStatus(ctx, approve(updated), metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("approved through /status: %v, want 422", err)
	}
	if _, err := alice.UpdateApproval(ctx, updated.Name, approve(updated), metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice approves her own request: %v, want 403", err)
	}
	if _, err := s.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "approvers"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:certificates.k8s.io:kube-apiserver-client-approver"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "carol"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// carol may approve the signer but has no rights on the requests:
	// RBAC refuses her before the signer is asked about.
	carol := as(t, s, "carol").CertificatesV1().CertificateSigningRequests()
	if _, err := carol.UpdateApproval(ctx, updated.Name, approve(updated), metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("carol without update on certificatesigningrequests/approval: %v, want 403", err)
	}
	if _, err := s.Client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-approval"},
		Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{certificatesv1.GroupName}, Resources: []string{"certificatesigningrequests"}},
			{Verbs: []string{"update", "patch"}, APIGroups: []string{certificatesv1.GroupName}, Resources: []string{"certificatesigningrequests/approval"}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"alice", "carol"} {
		if _, err := s.Client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: who + "-csr-approval"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "csr-approval"},
			Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: who}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// alice may now write /approval, but not approve this signer.
	testserverWait(t, "alice's approval binding to count", func() error {
		_, err := alice.UpdateApproval(ctx, updated.Name, approve(updated), metav1.UpdateOptions{})
		if err != nil && strings.Contains(err.Error(), "not permitted to approve") {
			return nil
		}
		return fmt.Errorf("alice approves: %v, want refused by the signer check", err)
	})
	var approved *certificatesv1.CertificateSigningRequest
	testserverWait(t, "carol to approve", func() (err error) {
		approved, err = carol.UpdateApproval(ctx, updated.Name, approve(updated), metav1.UpdateOptions{})
		return err
	})
	if c := approved.Status.Conditions; len(c) != 1 || c[0].Type != certificatesv1.CertificateApproved || c[0].LastUpdateTime.IsZero() {
		t.Errorf("conditions after approval: %+v", c)
	}
	denied := approve(approved)
	denied.Status.Conditions[1].Type = certificatesv1.CertificateDenied
	if _, err := admin.UpdateApproval(ctx, denied.Name, denied, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("denied once approved: %v, want 422", err)
	}
	// The signer writes the certificate through /status, once.
	issued := approved.DeepCopy()
	issued.Status.Certificate = []byte("not a certificate")
	if _, err := admin.UpdateStatus(ctx, issued, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) {
		t.Errorf("status.certificate not PEM: %v, want 422", err)
	}

	// No system:masters certificate from the client signer, even for the admin.
	_, err = admin.Create(ctx, newCSR("masters", requestPEM(t, "eve", "system:masters"), certificatesv1.KubeAPIServerClientSignerName), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "system:masters group is not allowed") {
		t.Errorf("a system:masters request: %v, want 403", err)
	}
	if _, err := admin.Create(ctx, newCSR("masters-other", requestPEM(t, "eve", "system:masters"), "example.com/signer"), metav1.CreateOptions{}); err != nil {
		t.Errorf("a system:masters request to another signer: %v", err)
	}

	// Patches of /approval work too (kubectl certificate approve uses PUT).
	patch := []byte(`{"status":{"conditions":[{"type":"Denied","status":"True","reason":"Test"}]}}`)
	other, err := admin.Patch(ctx, "masters-other", types.MergePatchType, patch, metav1.PatchOptions{}, "approval")
	if err != nil || len(other.Status.Conditions) != 1 || other.Status.Conditions[0].Type != certificatesv1.CertificateDenied {
		t.Errorf("patch of /approval: %+v, %v", other, err)
	}
	list, err := admin.List(ctx, metav1.ListOptions{FieldSelector: "spec.signerName=example.com/signer"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "masters-other" {
		t.Errorf("list by signer: %v, %v", list, err)
	}
}

// kubectl finds the resource, its short name and /approval in discovery.
func TestCertificateSigningRequestDiscovery(t *testing.T) {
	s := startAPIOnly(t)
	list, err := s.Client.Discovery().ServerResourcesForGroupVersion("certificates.k8s.io/v1")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]metav1.APIResource{}
	for _, r := range list.APIResources {
		found[r.Name] = r
	}
	if r := found["certificatesigningrequests"]; r.Namespaced || !slices.Equal(r.ShortNames, []string{"csr"}) || r.Kind != "CertificateSigningRequest" {
		t.Errorf("certificatesigningrequests: %+v", r)
	}
	for _, sub := range []string{"status", "approval"} {
		if r, ok := found["certificatesigningrequests/"+sub]; !ok || !slices.Contains(r.Verbs, "update") {
			t.Errorf("certificatesigningrequests/%s: %+v", sub, r)
		}
	}
}
