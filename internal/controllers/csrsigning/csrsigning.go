// Package csrsigning signs approved CertificateSigningRequests with the
// cluster's CA, as Kubernetes' csrsigning controller does for the signers
// kubernetes.io/kube-apiserver-client (client certificates of users: the
// request's subject CN is the user, O the groups) and
// kubernetes.io/kube-apiserver-client-kubelet (nodes' client
// certificates). It runs on the control plane, which holds the CA key:
// clients never need it. Requests to other signers are left pending for their own signers;
// an approved request a signer cannot honour (its usages) gets a Failed
// condition and no certificate.
package csrsigning

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	certlisters "k8s.io/client-go/listers/certificates/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// CA signs a checked certificate request; *pki.CA is one.
type CA interface {
	SignRequest(req *x509.CertificateRequest, usage x509.KeyUsage, extUsages []x509.ExtKeyUsage, validity time.Duration) ([]byte, error)
}

// DefaultDuration is how long a certificate is valid when its request
// asks for no duration, and the longest it may ask for (Kubernetes'
// --cluster-signing-duration); the CA's own expiry caps it too.
const DefaultDuration = 365 * 24 * time.Hour

// minDuration is the shortest validity given, twice the backdating, as upstream.
const minDuration = 10 * time.Minute

// Controller signs requests.
type Controller struct {
	log      *slog.Logger
	client   kubernetes.Interface
	ca       CA
	csrs     certlisters.CertificateSigningRequestLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
	duration time.Duration
}

// Option configures a Controller.
type Option func(*Controller)

// WithDuration sets the default and longest validity (DefaultDuration).
func WithDuration(d time.Duration) Option { return func(c *Controller) { c.duration = d } }

// New builds the controller on factory's CertificateSigningRequest informer.
func New(log *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, ca CA, opts ...Option) *Controller {
	c := &Controller{
		log: log.With("controller", "csrsigning"), client: client, ca: ca, duration: DefaultDuration,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "csrsigning"}),
	}
	for _, o := range opts {
		o(c)
	}
	inf := factory.Certificates().V1().CertificateSigningRequests()
	c.csrs = inf.Lister()
	enqueue := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
			c.queue.Add(csr.Name)
		}
	}
	c.synced = controllerutil.AddEventHandlers(c.log, controllerutil.EventHandler{Informer: inf.Informer(), Handler: cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) },
	}})
	return c
}

// Run signs until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.log, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("csr"))
}

func (c *Controller) sync(ctx context.Context, name string) error {
	csr, err := c.csrs.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(csr.Status.Certificate) > 0 || !approved(csr) || hasCondition(csr, certificatesv1.CertificateFailed) {
		return nil
	}
	check, ok := signers[csr.Spec.SignerName]
	if !ok {
		return nil // another signer's
	}
	req, err := parseRequest(csr.Spec.Request)
	if err == nil {
		err = check(req, csr.Spec.Usages)
	}
	if err != nil {
		return c.fail(ctx, csr, err)
	}
	usage, extUsages := x509Usages(csr.Spec.Usages)
	cert, err := c.ca.SignRequest(req, usage, extUsages, c.validity(csr.Spec.ExpirationSeconds))
	if err != nil {
		return fmt.Errorf("sign certificate request %q: %w", csr.Name, err)
	}
	csr = csr.DeepCopy()
	csr.Status.Certificate = cert
	if _, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{FieldManager: "csrsigning-controller"}); err != nil {
		return fmt.Errorf("store the certificate of %q: %w", csr.Name, err)
	}
	c.log.Info("signed", "csr", csr.Name, "signer", csr.Spec.SignerName, "subject", req.Subject.String(), "requestor", csr.Spec.Username)
	return nil
}

// fail marks a request the signer refuses, as upstream: a Failed
// condition, reason SignerValidationFailure.
func (c *Controller) fail(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, why error) error {
	csr = csr.DeepCopy()
	now := metav1.Now()
	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: "SignerValidationFailure",
		Message: why.Error(), LastUpdateTime: now, LastTransitionTime: now,
	})
	if _, err := c.client.CertificatesV1().CertificateSigningRequests().UpdateStatus(ctx, csr, metav1.UpdateOptions{FieldManager: "csrsigning-controller"}); err != nil {
		return fmt.Errorf("mark %q failed (%v): %w", csr.Name, why, err)
	}
	c.log.Info("refused", "csr", csr.Name, "signer", csr.Spec.SignerName, "reason", why)
	return nil
}

// validity is upstream's: the default when none is asked for, else what
// is asked within [10 minutes, the default].
func (c *Controller) validity(expirationSeconds *int32) time.Duration {
	if expirationSeconds == nil {
		return c.duration
	}
	return min(max(time.Duration(*expirationSeconds)*time.Second, minDuration), c.duration)
}

// approved: Approved and not Denied.
func approved(csr *certificatesv1.CertificateSigningRequest) bool {
	return hasCondition(csr, certificatesv1.CertificateApproved) && !hasCondition(csr, certificatesv1.CertificateDenied)
}

func hasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func parseRequest(data []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	return x509.ParseCertificateRequest(block.Bytes)
}

// signers are the signer names served here, each with its check of a request.
var signers = map[string]func(*x509.CertificateRequest, []certificatesv1.KeyUsage) error{
	certificatesv1.KubeAPIServerClientSignerName:        checkClient,
	certificatesv1.KubeAPIServerClientKubeletSignerName: checkKubeletClient,
}

// checkClient: client auth, and digital signature and key encipherment at most.
func checkClient(_ *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	hasClientAuth := false
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment:
		case certificatesv1.UsageClientAuth:
			hasClientAuth = true
		default:
			return fmt.Errorf("invalid usage for client certificate: %s", u)
		}
	}
	if !hasClientAuth {
		return fmt.Errorf("missing required usage for client certificate: %s", certificatesv1.UsageClientAuth)
	}
	return nil
}

// checkKubeletClient is upstream's ValidateKubeletClientCSR: a node's
// identity (system:node:<name> in system:nodes only), no names, and the
// usages of a client certificate exactly.
func checkKubeletClient(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	switch {
	case !slices.Equal(req.Subject.Organization, []string{"system:nodes"}):
		return errors.New("subject organization is not system:nodes")
	case len(req.DNSNames) > 0 || len(req.EmailAddresses) > 0 || len(req.IPAddresses) > 0 || len(req.URIs) > 0:
		return errors.New("DNS, email, IP and URI subjectAltNames are not allowed")
	case !strings.HasPrefix(req.Subject.CommonName, "system:node:"):
		return errors.New(`subject common name does not begin with "system:node:"`)
	}
	set := slices.Sorted(slices.Values(usages))
	withRSA := []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment}
	withoutRSA := []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth, certificatesv1.UsageDigitalSignature}
	if !slices.Equal(set, withRSA) && !slices.Equal(set, withoutRSA) {
		return fmt.Errorf("usages did not match %v", withRSA)
	}
	return nil
}

// x509Usages maps the usages the signers accept to X.509's.
func x509Usages(usages []certificatesv1.KeyUsage) (x509.KeyUsage, []x509.ExtKeyUsage) {
	var usage x509.KeyUsage
	var ext []x509.ExtKeyUsage
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature:
			usage |= x509.KeyUsageDigitalSignature
		case certificatesv1.UsageKeyEncipherment:
			usage |= x509.KeyUsageKeyEncipherment
		case certificatesv1.UsageClientAuth:
			ext = append(ext, x509.ExtKeyUsageClientAuth)
		}
	}
	return usage, ext
}
