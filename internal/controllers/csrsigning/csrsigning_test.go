package csrsigning

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/testwait"
)

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

func conditions(types ...certificatesv1.RequestConditionType) []certificatesv1.CertificateSigningRequestCondition {
	var out []certificatesv1.CertificateSigningRequestCondition
	for _, t := range types {
		out = append(out, certificatesv1.CertificateSigningRequestCondition{Type: t, Status: corev1.ConditionTrue, Reason: "Test"})
	}
	return out
}

func TestSigning(t *testing.T) {
	ca, err := pki.EnsureCA(t.TempDir(), "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	client := "kubernetes.io/kube-apiserver-client"
	kubelet := "kubernetes.io/kube-apiserver-client-kubelet"
	clientAuth := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	approved := conditions(certificatesv1.CertificateApproved)
	tests := []struct {
		name       string
		signer     string
		request    []byte
		usages     []certificatesv1.KeyUsage
		expiration *int32
		conditions []certificatesv1.CertificateSigningRequestCondition
		issued     []byte

		signed   time.Duration // validity of the certificate; 0: none issued
		failed   string        // a Failed condition whose message holds this
		wantCert []byte        // the certificate left as it was
	}{
		{name: "approved", signer: client, request: requestPEM(t, "alice", "devs"), usages: clientAuth, conditions: approved, signed: DefaultDuration},
		{name: "an hour", signer: client, request: requestPEM(t, "alice"), usages: clientAuth, expiration: ptr(3600), conditions: approved, signed: time.Hour},
		{name: "beyond the default", signer: client, request: requestPEM(t, "alice"), usages: clientAuth, expiration: ptr(1 << 30), conditions: approved, signed: DefaultDuration},
		{name: "key encipherment too", signer: client, request: requestPEM(t, "alice"), conditions: approved, signed: DefaultDuration,
			usages: []certificatesv1.KeyUsage{certificatesv1.UsageKeyEncipherment, certificatesv1.UsageClientAuth}},
		{name: "pending", signer: client, request: requestPEM(t, "alice"), usages: clientAuth},
		{name: "denied", signer: client, request: requestPEM(t, "alice"), usages: clientAuth, conditions: conditions(certificatesv1.CertificateDenied)},
		{name: "another signer", signer: "example.com/signer", request: requestPEM(t, "alice"), usages: clientAuth, conditions: approved},
		{name: "already issued", signer: client, request: requestPEM(t, "alice"), usages: clientAuth, conditions: approved,
			issued: []byte("issued before"), wantCert: []byte("issued before")},
		{name: "already failed", signer: client, request: requestPEM(t, "alice"), usages: clientAuth,
			conditions: conditions(certificatesv1.CertificateApproved, certificatesv1.CertificateFailed)},
		{name: "server auth", signer: client, request: requestPEM(t, "alice"), conditions: approved,
			usages: []certificatesv1.KeyUsage{certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth}, failed: "invalid usage for client certificate: server auth"},
		{name: "no client auth", signer: client, request: requestPEM(t, "alice"), conditions: approved,
			usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature}, failed: "missing required usage for client certificate: client auth"},
		{name: "a node", signer: kubelet, request: requestPEM(t, "system:node:n1", "system:nodes"), usages: clientAuth, conditions: approved, signed: DefaultDuration},
		{name: "a node in other groups", signer: kubelet, request: requestPEM(t, "system:node:n1", "system:nodes", "devs"), usages: clientAuth,
			conditions: approved, failed: "subject organization is not system:nodes"},
		{name: "not a node", signer: kubelet, request: requestPEM(t, "alice", "system:nodes"), usages: clientAuth,
			conditions: approved, failed: `does not begin with "system:node:"`},
	}
	var objs []*certificatesv1.CertificateSigningRequest
	for i, tt := range tests {
		objs = append(objs, &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("csr-%d", i)},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: tt.request, SignerName: tt.signer, Usages: tt.usages, ExpirationSeconds: tt.expiration, Username: "admin",
			},
			Status: certificatesv1.CertificateSigningRequestStatus{Conditions: tt.conditions, Certificate: tt.issued},
		})
	}
	cs := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, o := range objs {
		if _, err := cs.CertificatesV1().CertificateSigningRequests().Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), cs, factory, ca)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := objs[i].Name
			if err := c.sync(ctx, name); err != nil {
				t.Fatal(err)
			}
			got, err := cs.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			failed := ""
			for _, c := range got.Status.Conditions {
				if c.Type == certificatesv1.CertificateFailed && c.Reason == "SignerValidationFailure" {
					failed = c.Message
				}
			}
			if (failed == "") != (tt.failed == "") || !strings.Contains(failed, tt.failed) {
				t.Errorf("Failed condition %q, want %q", failed, tt.failed)
			}
			if tt.signed == 0 {
				if string(got.Status.Certificate) != string(tt.wantCert) {
					t.Errorf("certificate %q, want %q", got.Status.Certificate, tt.wantCert)
				}
				return
			}
			block, _ := pem.Decode(got.Status.Certificate)
			if block == nil {
				t.Fatalf("no PEM certificate issued: %q", got.Status.Certificate)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("not a client certificate of the CA: %v", err)
			}
			req, _ := parseRequest(tt.request)
			if cert.Subject.CommonName != req.Subject.CommonName || !slices.Equal(cert.Subject.Organization, req.Subject.Organization) {
				t.Errorf("subject %v, want the request's %v", cert.Subject, req.Subject)
			}
			if validity := cert.NotAfter.Sub(cert.NotBefore) - pki.Backdate; validity < tt.signed-time.Minute || validity > tt.signed+time.Minute {
				t.Errorf("valid for %v, want %v", validity, tt.signed)
			}
		})
	}
}

// Run signs a request once it is approved.
func TestRunSignsOnApproval(t *testing.T) {
	ca, err := pki.EnsureCA(t.TempDir(), "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(cs, 0)
	c := New(slog.New(slog.NewTextHandler(io.Discard, nil)), cs, factory, ca, WithDuration(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	go c.Run(ctx, 1)

	csrs := cs.CertificatesV1().CertificateSigningRequests()
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "bob"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: requestPEM(t, "bob"), SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = conditions(certificatesv1.CertificateApproved)
	if _, err := csrs.UpdateApproval(ctx, "bob", csr, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, "the certificate", func() (bool, string) {
		got, err := csrs.Get(ctx, "bob", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(got.Status.Certificate) > 0, fmt.Sprint(got.Status)
	})
}

func ptr(n int32) *int32 { return &n }
