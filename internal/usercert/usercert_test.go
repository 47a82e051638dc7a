package usercert_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/testserver"
	"wharf.dev/wharf/internal/usercert"
)

func TestRequestCheck(t *testing.T) {
	tests := []struct {
		name string
		r    usercert.Request
		want string // "" valid
	}{
		{"user and groups", usercert.Request{User: "alice", Groups: []string{"devs", "ops"}}, ""},
		{"no groups", usercert.Request{User: "alice"}, ""},
		{"ten minutes", usercert.Request{User: "alice", Expiration: 10 * time.Minute}, ""},
		{"no user", usercert.Request{Groups: []string{"devs"}}, "a user name is required"},
		{"blank user", usercert.Request{User: "  "}, "a user name is required"},
		{"empty group", usercert.Request{User: "alice", Groups: []string{""}}, "a group name may not be empty"},
		{"masters", usercert.Request{User: "alice", Groups: []string{"devs", "system:masters"}}, "never signs client certificates in system:masters"},
		{"a minute", usercert.Request{User: "alice", Expiration: time.Minute}, "must be at least 10m0s"},
		{"a century", usercert.Request{User: "alice", Expiration: 100 * 365 * 24 * time.Hour}, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Check()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Check() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNamePrefix(t *testing.T) {
	for user, want := range map[string]string{
		"alice":               "wharf-user-alice-",
		"Alice.Smith@example": "wharf-user-alice-smith-example-",
		"system:node:n1":      "wharf-user-system-node-n1-",
		"ü":                   "wharf-user-x-",
	} {
		if got := usercert.NamePrefix(user); got != want {
			t.Errorf("NamePrefix(%q) = %q, want %q", user, got, want)
		}
	}
}

// Issue against a real control plane: the certificate it returns, in
// the kubeconfig Kubeconfig writes, authenticates the user in the groups.
func TestIssue(t *testing.T) {
	s := testserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	creds, err := usercert.Issue(ctx, s.Client, usercert.Request{User: "erin", Groups: []string{"devs", "ops"}, Expiration: time.Hour, Reason: "TestIssue"})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := s.Client.CertificatesV1().CertificateSigningRequests().Get(ctx, creds.CSRName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(csr.Name, "wharf-user-erin-") || csr.Spec.SignerName != certificatesv1.KubeAPIServerClientSignerName ||
		csr.Spec.ExpirationSeconds == nil || *csr.Spec.ExpirationSeconds != 3600 {
		t.Errorf("request %s: %+v", csr.Name, csr.Spec)
	}
	if c := csr.Status.Conditions; len(c) != 1 || c[0].Type != certificatesv1.CertificateApproved || c[0].Reason != "TestIssue" {
		t.Errorf("conditions %+v, want Approved with reason TestIssue", c)
	}
	block, _ := pem.Decode(creds.CertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d > 70*time.Minute {
		t.Errorf("valid for %v, want an hour", d)
	}

	cluster := &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.Loopback.TLSClientConfig.CAData}
	data, err := usercert.Kubeconfig("test", cluster, "test-erin", creds)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "test-erin" || cfg.Contexts["test-erin"].Cluster != "test" || cfg.AuthInfos["test-erin"].Token != "" {
		t.Errorf("kubeconfig: %+v", cfg)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	review, err := kubernetes.NewForConfigOrDie(rc).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "erin" || !slices.Contains(u.Groups, "devs") || !slices.Contains(u.Groups, "ops") {
		t.Errorf("whoami with the kubeconfig: %+v, want erin in devs and ops", u)
	}

}

// Without a signer Issue gives up after its timeout, saying what it
// waited for; a refusal by the signer is reported with its message.
func TestIssueWithoutSigner(t *testing.T) {
	s := testserver.Start(t, func(o *controlplane.Options) { o.DisableControllers = true })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := usercert.Issue(ctx, s.Client, usercert.Request{User: "frank", Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "is approved but not signed after 300ms") || !strings.Contains(err.Error(), "kubectl get csr wharf-user-frank-") {
		t.Fatalf("without a signer: %v", err)
	}

	// A signer that refuses whatever is approved.
	csrs := s.Client.CertificatesV1().CertificateSigningRequests()
	go func() {
		for ctx.Err() == nil {
			list, _ := csrs.List(ctx, metav1.ListOptions{})
			for _, csr := range list.Items {
				if !strings.HasPrefix(csr.Name, "wharf-user-grace-") || len(csr.Status.Conditions) != 1 {
					continue
				}
				csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
					Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "SignerValidationFailure", Message: "no grace today",
				})
				csrs.UpdateStatus(ctx, &csr, metav1.UpdateOptions{})
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err = usercert.Issue(ctx, s.Client, usercert.Request{User: "grace"})
	if err == nil || !strings.Contains(err.Error(), "the signer refused") || !strings.Contains(err.Error(), "no grace today") {
		t.Fatalf("refused by the signer: %v", err)
	}
}
