package coe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/wire"
)

// Keys of the credentials Secret (docs/service.md).
const (
	keyCACert     = "ca.crt"
	keyCAKey      = "ca.key"
	keyAdminToken = "admin-token"
	keyJoinSecret = "join-secret"
	keySAKey      = "service-account.key"
)

// credentials are a cluster's CA and tokens.
type credentials struct {
	caPEM, caKeyPEM        []byte
	saKeyPEM               []byte // the service account key; older clusters have none
	adminToken, joinSecret string
	// joinToken is what agents join with (wire.JoinToken).
	joinToken string
}

func credentialsName(cluster string) string { return cluster + "-credentials" }

// pullTokenNode is the node a cluster's workers pull from the service's
// registry as: their token is a node token of the service.
func pullTokenNode(uid types.UID) string { return "cluster-" + string(uid) }

// pullTokenName names the Secret of a cluster's pull token.
func pullTokenName(uid types.UID) string { return wire.NodeTokenSecretName(pullTokenNode(uid)) }

// ensureCredentials loads the cluster's credentials Secret, making it on
// first use. The Secret is owned by the Cluster; one left by an earlier
// cluster of the same name is replaced.
func (c *Controller) ensureCredentials(ctx context.Context, cl *wharfv1.Cluster) (*credentials, error) {
	c.mu.Lock()
	cr := c.creds[cl.UID]
	c.mu.Unlock()
	if cr != nil {
		return cr, nil
	}
	secrets := c.cfg.Kube.CoreV1().Secrets(cl.Namespace)
	name := credentialsName(cl.Name)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err == nil && !metav1.IsControlledBy(s, cl) {
		c.log.Info("replacing credentials of an earlier cluster of the same name", "cluster", cl.Namespace+"/"+cl.Name)
		err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(s.UID))})
		if err == nil || apierrors.IsNotFound(err) {
			err = apierrors.NewNotFound(corev1.Resource("secrets"), name)
		}
	}
	if apierrors.IsNotFound(err) {
		var data map[string][]byte
		if data, err = newCredentials(cl.Name); err != nil {
			return nil, err
		}
		s, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: cl.Namespace,
				Labels:          map[string]string{"wharf.dev/cluster": cl.Name},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cl, wharfv1.SchemeGroupVersion.WithKind("Cluster"))},
			},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			s, err = secrets.Get(ctx, name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	if cr, err = parseCredentials(s.Data); err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	c.mu.Lock()
	c.creds[cl.UID] = cr
	c.mu.Unlock()
	return cr, nil
}

// newCredentials makes a CA and tokens. pki keeps CAs in directories, so
// the CA is made in a private temporary one that is removed at once.
func newCredentials(cluster string) (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "wharf-ca-")
	if err != nil {
		return nil, fmt.Errorf("make CA: %w", err)
	}
	defer os.RemoveAll(dir)
	if _, err := pki.EnsureCA(dir, "wharf-"+cluster+"-ca"); err != nil {
		return nil, fmt.Errorf("make CA: %w", err)
	}
	if _, err := pki.EnsureKey(filepath.Join(dir, keySAKey)); err != nil {
		return nil, fmt.Errorf("make service account key: %w", err)
	}
	data := map[string][]byte{keyAdminToken: []byte(randomToken()), keyJoinSecret: []byte(randomToken())}
	for key, file := range map[string]string{keyCACert: "ca.crt", keyCAKey: "ca.key", keySAKey: keySAKey} {
		if data[key], err = os.ReadFile(filepath.Join(dir, file)); err != nil {
			return nil, fmt.Errorf("make CA: %w", err)
		}
	}
	return data, nil
}

func parseCredentials(data map[string][]byte) (*credentials, error) {
	cr := &credentials{
		caPEM: data[keyCACert], caKeyPEM: data[keyCAKey], saKeyPEM: data[keySAKey],
		adminToken: string(data[keyAdminToken]), joinSecret: string(data[keyJoinSecret]),
	}
	if len(cr.caKeyPEM) == 0 || cr.adminToken == "" || cr.joinSecret == "" {
		return nil, errors.New("incomplete credentials: want ca.crt, ca.key, admin-token and join-secret")
	}
	hash, err := wire.CAHash(cr.caPEM)
	if err != nil {
		return nil, fmt.Errorf("ca.crt: %w", err)
	}
	cr.joinToken = wire.JoinToken{CAHash: hash, Secret: cr.joinSecret}.String()
	return cr, nil
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ensurePullToken returns the token a cluster's workers pull images from
// the service's registry with: a node token of the service, in a Secret of
// its kube-system ("" when no registry is configured).
func (c *Controller) ensurePullToken(ctx context.Context, cl *wharfv1.Cluster) (string, error) {
	if c.cfg.RegistryURL == "" || len(c.cfg.RegistryCA) == 0 {
		return "", nil
	}
	secrets := c.cfg.Kube.CoreV1().Secrets(wire.NodeTokenNamespace)
	node, name := pullTokenNode(cl.UID), pullTokenName(cl.UID)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		secret := wire.NodeTokenSecret(node, wire.NodeToken(node, randomToken()))
		secret.Labels = map[string]string{"wharf.dev/cluster": cl.Name, "wharf.dev/cluster-namespace": cl.Namespace}
		s, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			s, err = secrets.Get(ctx, name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return "", fmt.Errorf("pull token %s/%s: %w", wire.NodeTokenNamespace, name, err)
	}
	return string(s.Data["token"]), nil
}

// clusterClient is a client of one cluster's API, as its admin.
type clusterClient struct {
	address string
	kube    kubernetes.Interface
}

// clusterAPI returns a client of the cluster's API at address.
func (c *Controller) clusterAPI(cl *wharfv1.Cluster, cr *credentials, address string) (kubernetes.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.clients[cl.UID]; cc != nil && cc.address == address {
		return cc.kube, nil
	}
	kube, err := kubernetes.NewForConfig(&rest.Config{
		Host:            address,
		BearerToken:     cr.adminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: cr.caPEM},
		// The service drives many clusters; its own requests are few and
		// must not queue behind client-side throttling.
		QPS: 200, Burst: 400,
		ContentConfig: rest.ContentConfig{
			ContentType:        "application/vnd.kubernetes.protobuf",
			AcceptContentTypes: "application/vnd.kubernetes.protobuf,application/json",
		},
		UserAgent: "wharf-service",
	})
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", address, err)
	}
	c.clients[cl.UID] = &clusterClient{address: address, kube: kube}
	return kube, nil
}
