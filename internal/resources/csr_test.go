package resources

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// csrPEM is a PEM certificate request of a new key for cn in orgs.
func csrPEM(t *testing.T, cn string, orgs ...string) []byte {
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

// certPEM is a self-signed PEM certificate, as status.certificate holds.
func certPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"}, NotBefore: testNow, NotAfter: testNow.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newCSR(t *testing.T) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "alice-1"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    csrPEM(t, "alice", "devs"),
			SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth},
		},
	}
}

func condition(typ certificatesv1.RequestConditionType, status corev1.ConditionStatus) certificatesv1.CertificateSigningRequestCondition {
	return certificatesv1.CertificateSigningRequestCondition{Type: typ, Status: status, Reason: "Test"}
}

func TestCertificateSigningRequestValidation(t *testing.T) {
	approved := condition(certificatesv1.CertificateApproved, corev1.ConditionTrue)
	denied := condition(certificatesv1.CertificateDenied, corev1.ConditionTrue)
	tests := []struct {
		name   string
		mutate func(*certificatesv1.CertificateSigningRequest)
		want   []wantErr
	}{
		{name: "valid"},
		{name: "any name that fits a path", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Name = "Alice:Client_1" }},
		{name: "name with a slash", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Name = "a/b" }, want: []wantErr{invalid("metadata.name")}},
		{name: "no request", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = nil }, want: []wantErr{invalid("spec.request")}},
		{name: "request not PEM", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = []byte("hello") },
			want: []wantErr{invalid("spec.request")}},
		{name: "a certificate, not a request", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = certPEM(t) },
			want: []wantErr{invalid("spec.request")}},
		{name: "signature does not verify", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			block, _ := pem.Decode(c.Spec.Request)
			block.Bytes[len(block.Bytes)-1] ^= 0xff
			c.Spec.Request = pem.EncodeToMemory(block)
		}, want: []wantErr{invalid("spec.request")}},
		{name: "no usages", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = nil }, want: []wantErr{required("spec.usages")}},
		{name: "unknown usage", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{"client auth", "teleport"}
		}, want: []wantErr{notSupported("spec.usages[1]")}},
		{name: "duplicate usage", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{"client auth", "client auth"}
		}, want: []wantErr{duplicate("spec.usages[1]")}},
		{name: "no signer", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "" }, want: []wantErr{required("spec.signerName")}},
		{name: "signer without a path", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com" },
			want: []wantErr{invalid("spec.signerName")}},
		{name: "signer with two slashes", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/a/b" },
			want: []wantErr{invalid("spec.signerName")}},
		{name: "signer domain of one label", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "localhost/signer" },
			want: []wantErr{invalid("spec.signerName")}},
		{name: "signer path not DNS", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/My_Signer" },
			want: []wantErr{invalid("spec.signerName")}},
		{name: "legacy signer", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "kubernetes.io/legacy-unknown" },
			want: []wantErr{invalid("spec.signerName")}},
		{name: "custom signer", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com/team.signer" }},
		{name: "ten minutes", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = ptrTo(int32(600)) }},
		{name: "under ten minutes", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = ptrTo(int32(599)) },
			want: []wantErr{invalid("spec.expirationSeconds")}},
		{name: "approved", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
		}},
		{name: "approved and denied", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, denied}
		}, want: []wantErr{invalid("status.conditions[1].type")}},
		{name: "approved twice", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved, approved}
		}, want: []wantErr{duplicate("status.conditions[1].type")}},
		{name: "approved false", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{condition(certificatesv1.CertificateApproved, corev1.ConditionFalse)}
		}, want: []wantErr{notSupported("status.conditions[0].status")}},
		{name: "another condition false", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{condition("Checked", corev1.ConditionFalse)}
		}},
		{name: "condition without type or status", mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{}}
		}, want: []wantErr{required("status.conditions[0].type"), required("status.conditions[0].status")}},
		{name: "issued", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = certPEM(t) }},
		{name: "certificate not PEM", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("junk") },
			want: []wantErr{invalid("status.certificate")}},
		{name: "certificate a request", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = csrPEM(t, "x") },
			want: []wantErr{invalid("status.certificate")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCSR(t)
			if tt.mutate != nil {
				tt.mutate(c)
			}
			checkErrs(t, CertificateSigningRequests().Validate(c), tt.want...)
		})
	}
}

func TestCertificateSigningRequestUpdates(t *testing.T) {
	res := CertificateSigningRequests()
	approved := condition(certificatesv1.CertificateApproved, corev1.ConditionTrue)
	approved.LastTransitionTime = metav1.NewTime(testNow)
	approved.LastUpdateTime = metav1.NewTime(testNow)

	// Create: who asks and any status are the server's to set.
	c := newCSR(t)
	c.Spec.Username, c.Spec.Groups = "mallory", []string{"system:masters"}
	c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
	res.PrepareForCreate(c)
	if c.Spec.Username != "" || c.Spec.Groups != nil || len(c.Status.Conditions) != 0 {
		t.Errorf("after create preparation: %+v %+v", c.Spec, c.Status)
	}
	SetCSRRequestor(c, "alice", "", []string{"devs", "system:authenticated"}, map[string][]string{"scopes": {"a"}})
	if c.Spec.Username != "alice" || len(c.Spec.Groups) != 2 || c.Spec.Extra["scopes"][0] != "a" {
		t.Errorf("requestor: %+v", c.Spec)
	}

	// The main resource keeps the stored spec.
	stored := c.DeepCopy()
	edit := c.DeepCopy()
	edit.Spec.Usages = []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth}
	edit.Spec.Username = "bob"
	res.PrepareForUpdate(edit, stored)
	if diff := cmp.Diff(stored.Spec, edit.Spec); diff != "" {
		t.Errorf("spec changed by an update (-stored +now):\n%s", diff)
	}

	// /approval takes the conditions only, with their times filled in.
	approval, _ := res.Subresource("approval")
	write := stored.DeepCopy()
	write.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{condition(certificatesv1.CertificateApproved, corev1.ConditionTrue)}
	write.Status.Certificate = certPEM(t)
	approval.PrepareForUpdate(write, stored)
	if len(write.Status.Certificate) != 0 {
		t.Error("/approval set the certificate")
	}
	if cs := write.Status.Conditions; len(cs) != 1 || cs[0].LastUpdateTime.IsZero() || cs[0].LastTransitionTime.IsZero() {
		t.Errorf("approval conditions: %+v", cs)
	}
	checkErrs(t, res.Validate(write))
	checkErrs(t, res.ValidateUpdate(write, stored))

	// /status keeps Approved as stored and may set the certificate once.
	stored.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approved}
	write = stored.DeepCopy()
	write.Status.Conditions[0].Reason = "Rewritten"
	write.Status.Conditions = append(write.Status.Conditions, condition(certificatesv1.CertificateFailed, corev1.ConditionTrue))
	write.Status.Certificate = certPEM(t)
	res.PrepareForStatusUpdate(write, stored)
	if diff := cmp.Diff(approved, write.Status.Conditions[0]); diff != "" {
		t.Errorf("/status changed Approved (-stored +now):\n%s", diff)
	}
	if f := write.Status.Conditions[1]; f.LastUpdateTime.IsZero() || f.LastTransitionTime.IsZero() {
		t.Errorf("Failed without times: %+v", f)
	}
	checkErrs(t, res.ValidateUpdate(write, stored))
	checkErrs(t, res.ValidateStatus(write, stored))

	issued := write.DeepCopy()
	for _, tt := range []struct {
		name   string
		mutate func(*certificatesv1.CertificateSigningRequest)
		want   []wantErr
		status bool // also ValidateStatus
	}{
		{name: "another certificate", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = certPEM(t) },
			want: []wantErr{forbidden("status.certificate")}},
		{name: "certificate removed", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = nil },
			want: []wantErr{forbidden("status.certificate")}},
		{name: "Approved removed", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = c.Status.Conditions[1:] },
			want: []wantErr{forbidden("status.conditions")}},
		{name: "Failed removed", mutate: func(c *certificatesv1.CertificateSigningRequest) { c.Status.Conditions = c.Status.Conditions[:1] },
			want: []wantErr{forbidden("status.conditions")}},
		{name: "Denied added through /status", status: true, mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = append(c.Status.Conditions, condition(certificatesv1.CertificateDenied, corev1.ConditionTrue))
		}, want: []wantErr{forbidden("status.conditions")}},
		{name: "Approved changed through /status", status: true, mutate: func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions[0].Message = "changed"
		}, want: []wantErr{forbidden("status.conditions")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			obj := issued.DeepCopy()
			tt.mutate(obj)
			errs := res.ValidateUpdate(obj, issued)
			if tt.status {
				errs = append(errs, res.ValidateStatus(obj, issued)...)
			}
			checkErrs(t, errs, tt.want...)
		})
	}
}

func TestCertificateSigningRequestRow(t *testing.T) {
	c := newCSR(t)
	c.CreationTimestamp = ago(90 * time.Second)
	c.Spec.Username = "alice"
	if diff := cmp.Diff([]any{"alice-1", "90s", "kubernetes.io/kube-apiserver-client", "alice", "<none>", "Pending"}, csrRow(c, testNow)); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	c.Spec.ExpirationSeconds = ptrTo(int32(24 * 3600))
	for _, tt := range []struct {
		conditions []certificatesv1.RequestConditionType
		issued     bool
		want       string
	}{
		{[]certificatesv1.RequestConditionType{certificatesv1.CertificateApproved}, false, "Approved"},
		{[]certificatesv1.RequestConditionType{certificatesv1.CertificateApproved}, true, "Approved,Issued"},
		{[]certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateFailed}, false, "Approved,Failed"},
		{[]certificatesv1.RequestConditionType{certificatesv1.CertificateDenied}, false, "Denied"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			c := c.DeepCopy()
			for _, typ := range tt.conditions {
				c.Status.Conditions = append(c.Status.Conditions, condition(typ, corev1.ConditionTrue))
			}
			if tt.issued {
				c.Status.Certificate = []byte("x")
			}
			row := csrRow(c, testNow)
			if row[4] != "24h" || row[5] != tt.want {
				t.Errorf("requested duration %v, condition %v; want 24h, %s", row[4], row[5], tt.want)
			}
		})
	}
	if f := CertificateSigningRequests().SelectableFields(c); f["spec.signerName"] != c.Spec.SignerName {
		t.Errorf("fields %v lack spec.signerName", f)
	}
}
