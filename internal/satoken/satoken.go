// Package satoken signs and verifies service account tokens: JSON Web
// Tokens (ES256) with the claims kube-apiserver puts in them, so that
// tools reading a token (client-go, `kubectl create token` users, OIDC
// discovery clients) find what they expect. It knows nothing of the API:
// the server checks that the service account and the object a token is
// bound to still exist.
package satoken

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// DefaultIssuer is the issuer and API audience kube-apiserver is usually
// given (--service-account-issuer).
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

const userPrefix = "system:serviceaccount:"

// Ref names an object a token is about.
type Ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// Kubernetes is the "kubernetes.io" claim.
type Kubernetes struct {
	Namespace      string `json:"namespace"`
	ServiceAccount Ref    `json:"serviceaccount"`
	Pod            *Ref   `json:"pod,omitempty"`
	Secret         *Ref   `json:"secret,omitempty"`
	Node           *Ref   `json:"node,omitempty"`
	// WarnAfter is set when a token lives longer than asked, as
	// kube-apiserver's extended tokens; Wharf never extends.
	WarnAfter *jwt.NumericDate `json:"warnafter,omitempty"`
}

// Claims are a token's claims.
type Claims struct {
	jwt.RegisteredClaims
	Kubernetes Kubernetes `json:"kubernetes.io"`
}

// Request is what a token is issued for.
type Request struct {
	Namespace      string
	ServiceAccount Ref
	// At most one of Pod and Secret: the object the token is bound to.
	Pod, Secret *Ref
	// Node is the pod's node, for information.
	Node      *Ref
	Audiences []string
	Lifetime  time.Duration
}

// Issuer signs and verifies tokens with one key.
type Issuer struct {
	name string
	key  *ecdsa.PrivateKey
	kid  string
	now  func() time.Time

	// verified remembers tokens already verified, until they expire: a
	// signature check costs 0.1–0.2 ms, every request of a pod's client
	// presents the same token, and a signature does not change.
	mu       sync.Mutex
	verified map[[32]byte]*Claims
}

// maxVerified bounds the verified tokens remembered.
const maxVerified = 4096

// New returns an issuer named name (the "iss" claim) signing with key.
func New(name string, key *ecdsa.PrivateKey) (*Issuer, error) {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	// The key ID as kube-apiserver derives it: the public key's hash.
	sum := sha256.Sum256(der)
	return &Issuer{name: name, key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:]), now: time.Now,
		verified: map[[32]byte]*Claims{}}, nil
}

// Name is the issuer ("iss"), also the API's default audience.
func (i *Issuer) Name() string { return i.name }

// Issue signs a token and returns it with its expiry.
func (i *Issuer) Issue(r Request) (string, time.Time, error) {
	if r.Namespace == "" || r.ServiceAccount.Name == "" || r.ServiceAccount.UID == "" {
		return "", time.Time{}, errors.New("a token needs a service account's namespace, name and uid")
	}
	if r.Pod != nil && r.Secret != nil {
		return "", time.Time{}, errors.New("a token is bound to one object at most")
	}
	now := i.now().Truncate(time.Second)
	exp := now.Add(r.Lifetime)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.name,
			Subject:   Username(r.Namespace, r.ServiceAccount.Name),
			Audience:  r.Audiences,
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		Kubernetes: Kubernetes{Namespace: r.Namespace, ServiceAccount: r.ServiceAccount, Pod: r.Pod, Secret: r.Secret, Node: r.Node},
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = i.kid
	s, err := t.SignedString(i.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, issuer, lifetime and that its
// audiences include one of audiences, and returns its claims. It does not
// check that what the token names still exists.
func (i *Issuer) Verify(token string, audiences []string) (*Claims, error) {
	key := sha256.Sum256([]byte(token + "\x00" + strings.Join(audiences, "\x00")))
	i.mu.Lock()
	c, ok := i.verified[key]
	i.mu.Unlock()
	if ok && i.now().Before(c.ExpiresAt.Time) {
		return c, nil
	}
	c, err := i.verify(token, audiences)
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.verified) >= maxVerified {
		now := i.now()
		for k, v := range i.verified {
			if !now.Before(v.ExpiresAt.Time) {
				delete(i.verified, k)
			}
		}
		if len(i.verified) >= maxVerified {
			clear(i.verified)
		}
	}
	i.verified[key] = c
	return c, nil
}

func (i *Issuer) verify(token string, audiences []string) (*Claims, error) {
	c := &Claims{}
	_, err := jwt.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return &i.key.PublicKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(i.name), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithTimeFunc(i.now))
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(audiences, a) }) {
		return nil, fmt.Errorf("token audiences %q do not include %q", []string(c.Audience), audiences)
	}
	if c.Kubernetes.Namespace == "" || c.Kubernetes.ServiceAccount.Name == "" ||
		c.Subject != Username(c.Kubernetes.Namespace, c.Kubernetes.ServiceAccount.Name) {
		return nil, errors.New("token does not name its service account")
	}
	return c, nil
}

// LooksLikeToken tells a JWT from other bearer tokens without parsing it,
// so that the API's own tokens skip signature checks.
func LooksLikeToken(s string) bool { return strings.Count(s, ".") == 2 && strings.HasPrefix(s, "eyJ") }

// Username is a service account's user name.
func Username(namespace, name string) string { return userPrefix + namespace + ":" + name }

// Groups are the groups of a service account's user.
func Groups(namespace string) []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace}
}

// SplitUsername returns the namespace and name of a service account user.
func SplitUsername(user string) (namespace, name string, ok bool) {
	rest, ok := strings.CutPrefix(user, userPrefix)
	if !ok {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok && namespace != "" && name != "" && !strings.Contains(name, ":")
}
