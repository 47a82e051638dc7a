// Package usercert hands a user a client certificate of a Wharf (or any
// Kubernetes) cluster through certificates.k8s.io: it makes a key here,
// creates a CertificateSigningRequest for it to the
// kubernetes.io/kube-apiserver-client signer, approves it with the
// caller's credentials (who must be allowed to approve that signer), waits
// for the cluster to sign it and builds a kubeconfig with the result. The
// user's key never leaves the caller, who needs no CA key: the cluster's
// control plane signs.
//
// The certificate's common name is the user and its organizations the
// groups, as the API server reads them; RBAC bindings of that user or
// those groups decide what it may do. Requests are left in the cluster
// as a record (kubectl get csr).
package usercert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/retry"
)

// Defaults of a Request.
const (
	DefaultExpiration = 365 * 24 * time.Hour
	DefaultTimeout    = 30 * time.Second
	// MinExpiration is the shortest validity a request may ask for.
	MinExpiration = 10 * time.Minute
)

// Request is a certificate to ask for.
type Request struct {
	// User is the certificate's subject common name, the user the API
	// server authenticates.
	User string
	// Groups are its organizations. system:masters is refused: the
	// signer never issues it (the cluster's admin credentials are that).
	Groups []string
	// Expiration is how long the certificate is valid (DefaultExpiration
	// when 0, at least MinExpiration); the signer may cap it (a year, the
	// CA's own expiry).
	Expiration time.Duration
	// Reason is the approval's reason, naming who approved (e.g.
	// "WharfClusterConfig").
	Reason string
	// Timeout bounds the wait for the signer (DefaultTimeout when 0).
	Timeout time.Duration
}

// Credentials are an issued certificate and its key, both PEM.
type Credentials struct {
	CertPEM, KeyPEM []byte
	// CSRName is the CertificateSigningRequest that asked for it.
	CSRName string
}

// Check returns what is wrong with r, naming the flag-like field.
func (r Request) Check() error {
	if strings.TrimSpace(r.User) == "" {
		return errors.New("a user name is required")
	}
	for _, g := range r.Groups {
		switch {
		case strings.TrimSpace(g) == "":
			return errors.New("a group name may not be empty")
		case g == "system:masters":
			return errors.New("group system:masters: the cluster never signs client certificates in system:masters (its admin credentials are that); bind the user or a group to cluster-admin instead")
		}
	}
	switch e := r.Expiration; {
	case e != 0 && e < MinExpiration:
		return fmt.Errorf("expiration %v: must be at least %v", e, MinExpiration)
	case e > time.Duration(math.MaxInt32)*time.Second:
		return fmt.Errorf("expiration %v: too long", e)
	}
	return nil
}

// Issue asks the cluster behind client for a certificate of r.User in
// r.Groups, approves the request and waits until it is signed.
func Issue(ctx context.Context, client kubernetes.Interface, r Request) (*Credentials, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	if r.Expiration == 0 {
		r.Expiration = DefaultExpiration
	}
	if r.Timeout == 0 {
		r.Timeout = DefaultTimeout
	}
	if r.Reason == "" {
		r.Reason = "WharfUserCertificate"
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate a key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: r.User, Organization: r.Groups},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request for %q: %w", r.User, err)
	}
	csrs := client.CertificatesV1().CertificateSigningRequests()
	seconds := int32(r.Expiration / time.Second)
	csr, err := csrs.Create(ctx, &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: NamePrefix(r.User)},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:           pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName:        certificatesv1.KubeAPIServerClientSignerName,
			Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			ExpirationSeconds: &seconds,
		},
	}, metav1.CreateOptions{FieldManager: "wharf"})
	if err != nil {
		return nil, fmt.Errorf("create a certificate signing request for %q: %w", r.User, err)
	}
	name := csr.Name
	if err := approve(ctx, client, csr, r.Reason); err != nil {
		return nil, fmt.Errorf("approve certificate signing request %s: %w", name, err)
	}
	certPEM, err := waitSigned(ctx, client, name, r.Timeout)
	if err != nil {
		return nil, err
	}
	if err := matches(certPEM, key, r); err != nil {
		return nil, fmt.Errorf("certificate signing request %s: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Credentials{CertPEM: certPEM, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), CSRName: name}, nil
}

var notNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// NamePrefix is the generateName of a user's requests:
// "wharf-user-<user>-", the user lower-cased with anything but letters,
// digits and dashes as dashes.
func NamePrefix(user string) string {
	u := strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(user), "-"), "-")
	if len(u) > 200 {
		u = u[:200]
	}
	if u == "" {
		u = "x"
	}
	return "wharf-user-" + u + "-"
}

// approve adds the Approved condition through /approval.
func approve(ctx context.Context, client kubernetes.Interface, csr *certificatesv1.CertificateSigningRequest, reason string) error {
	csrs := client.CertificatesV1().CertificateSigningRequests()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		csr = csr.DeepCopy()
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
			Reason: reason, Message: "approved by wharf for " + csr.Spec.Username,
		})
		_, err := csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{FieldManager: "wharf"})
		if err == nil {
			return nil
		}
		if cur, gerr := csrs.Get(ctx, csr.Name, metav1.GetOptions{}); gerr == nil {
			csr = cur
		}
		return err
	})
}

// waitSigned polls the request until it holds a certificate, or is
// denied or failed, or timeout passes.
func waitSigned(ctx context.Context, client kubernetes.Interface, name string, timeout time.Duration) ([]byte, error) {
	csrs := client.CertificatesV1().CertificateSigningRequests()
	var cert []byte
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		csr, err := csrs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err
			return false, nil // a passing failure of the API: try again
		}
		for _, c := range csr.Status.Conditions {
			switch c.Type {
			case certificatesv1.CertificateDenied:
				return false, fmt.Errorf("certificate signing request %s was denied (%s): %s", name, c.Reason, c.Message)
			case certificatesv1.CertificateFailed:
				return false, fmt.Errorf("the signer refused certificate signing request %s (%s): %s", name, c.Reason, c.Message)
			}
		}
		cert = csr.Status.Certificate
		return len(cert) > 0, nil
	})
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		detail := ""
		if last != nil {
			detail = fmt.Sprintf(" (last error: %v)", last)
		}
		return nil, fmt.Errorf("certificate signing request %s is approved but not signed after %v%s: does the cluster run a signer for %s? (kubectl get csr %s)",
			name, timeout, detail, certificatesv1.KubeAPIServerClientSignerName, name)
	}
	return cert, err
}

// matches checks that the certificate is for key and names r's subject.
func matches(certPEM []byte, key *ecdsa.PrivateKey, r Request) error {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("status.certificate is not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("status.certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("the certificate issued is not for the key requested")
	}
	if cert.Subject.CommonName != r.User || !sameSet(cert.Subject.Organization, r.Groups) {
		return fmt.Errorf("the certificate issued names %s, not the subject requested", cert.Subject)
	}
	return nil
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// UserKubeconfig issues r's certificate on the cluster admin (a client
// configuration with rights to create and approve requests) reaches, and
// returns a kubeconfig of cluster (named clusterName in it) with the
// certificate; its user and context are named <clusterName>-<user>.
func UserKubeconfig(ctx context.Context, admin *rest.Config, clusterName string, cluster *clientcmdapi.Cluster, r Request) ([]byte, error) {
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	creds, err := Issue(ctx, client, r)
	if err != nil {
		return nil, fmt.Errorf("certificate of user %s: %w", r.User, err)
	}
	return Kubeconfig(clusterName, cluster, clusterName+"-"+r.User, creds)
}

// Kubeconfig is a kubeconfig that reaches cluster (named clusterName in
// it) as the holder of c: its user and context are both named name, so
// that it merges beside an admin's.
func Kubeconfig(clusterName string, cluster *clientcmdapi.Cluster, name string, c *Credentials) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[clusterName] = cluster.DeepCopy()
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertPEM, ClientKeyData: c.KeyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}
