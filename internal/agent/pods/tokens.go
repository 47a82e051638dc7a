package pods

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// tokenKey is one projected token: a pod's, for an audience and lifetime.
type tokenKey struct {
	pod      types.UID
	audience string
	seconds  int64
}

type tokenEntry struct {
	token           []byte
	issued, expires time.Time
}

// Like the kubelet's token manager: a token is renewed once 80% of its
// lifetime has passed, or after a day, whichever comes first.
const (
	tokenRenewAt  = 0.8
	tokenMaxAge   = 24 * time.Hour
	defaultTokenS = 3600
)

// tokenCache asks the API for the service account tokens of the node's
// pods' projected volumes (TokenRequest, bound to the pod) and renews
// them; the pod workers' resyncs write renewed tokens into the volumes.
type tokenCache struct {
	client kubernetes.Interface
	clock  clock.Clock

	mu      sync.Mutex
	entries map[tokenKey]tokenEntry
}

func newTokenCache(client kubernetes.Interface, c clock.Clock) *tokenCache {
	return &tokenCache{client: client, clock: c, entries: map[tokenKey]tokenEntry{}}
}

// token returns a token for pod as p asks, from the cache unless it is due
// for renewal. If renewal fails, a token still valid is kept.
func (c *tokenCache) token(ctx context.Context, pod *v1.Pod, p *v1.ServiceAccountTokenProjection) ([]byte, error) {
	secs := int64(defaultTokenS)
	if p.ExpirationSeconds != nil {
		secs = *p.ExpirationSeconds
	}
	key := tokenKey{pod: pod.UID, audience: p.Audience, seconds: secs}
	now := c.clock.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && !e.due(now) {
		return e.token, nil
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &secs,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if p.Audience != "" {
		tr.Spec.Audiences = []string{p.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	out, err := c.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		if ok && now.Before(e.expires) {
			return e.token, nil // try again at the next sync
		}
		return nil, fmt.Errorf("request a token of service account %s/%s: %w", pod.Namespace, sa, err)
	}
	e = tokenEntry{token: []byte(out.Status.Token), issued: now, expires: out.Status.ExpirationTimestamp.Time}
	c.mu.Lock()
	c.entries[key] = e
	c.mu.Unlock()
	return e.token, nil
}

func (e tokenEntry) due(now time.Time) bool {
	life := e.expires.Sub(e.issued)
	return now.After(e.issued.Add(time.Duration(float64(life)*tokenRenewAt))) || now.After(e.issued.Add(tokenMaxAge))
}

// forget drops a pod's tokens once its worker is gone.
func (c *tokenCache) forget(uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if k.pod == uid {
			delete(c.entries, k)
		}
	}
}

// volumeSources are what the pods' volumes project: watched objects and
// tokens.
type volumeSources struct {
	*objectCache
	tokens *tokenCache
	claimSource
}

// ServiceAccountToken implements volume.Sources.
func (s volumeSources) ServiceAccountToken(ctx context.Context, pod *v1.Pod, p *v1.ServiceAccountTokenProjection) ([]byte, error) {
	return s.tokens.token(ctx, pod, p)
}
