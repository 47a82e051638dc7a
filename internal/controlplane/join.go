package controlplane

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"wharf.dev/wharf/internal/apiserver"
	"wharf.dev/wharf/internal/wire"
)

// Joining, as docs/agent.md and package wire fix it: an agent checks the
// CA from wire.CAPath against the hash in its join token, then trades the
// token's secret at wire.JoinPath for a node token and a serving
// certificate.
const (
	// bootstrappers is the group the join secret authenticates as.
	bootstrappers = "system:bootstrappers"
	maxAddresses  = 32
)

// joinRoutes serve agents joining the cluster.
func (s *Server) joinRoutes() []apiserver.Route {
	return []apiserver.Route{
		{Pattern: wire.CAPath, Public: true, Handler: http.HandlerFunc(s.serveCA)},
		{Pattern: wire.JoinPath, Handler: http.HandlerFunc(s.serveJoin)},
	}
}

func (s *Server) serveCA(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeStatus(w, apierrors.NewMethodNotSupported(corev1.Resource("ca"), r.Method))
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.ca.CertPEM)
}

func (s *Server) serveJoin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeStatus(w, apierrors.NewMethodNotSupported(corev1.Resource("join"), r.Method))
		return
	}
	if u, ok := apiserver.UserFrom(r.Context()); !ok || !slices.Contains(u.Groups, bootstrappers) {
		name := ""
		if u != nil {
			name = u.Name
		}
		writeStatus(w, apierrors.NewForbidden(corev1.Resource("nodes"), "", fmt.Errorf("user %q may not join nodes: only the join token may", name)))
		return
	}
	var req wire.JoinRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("join request: %v", err)))
		return
	}
	if err := validateJoin(req); err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	resp, err := s.join(r.Context(), req)
	if err != nil {
		s.log.Error("join failed", "node", req.NodeName, "err", err)
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	s.log.Info("node joined", "node", req.NodeName, "addresses", req.Addresses)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func validateJoin(req wire.JoinRequest) error {
	if msgs := validation.IsDNS1123Subdomain(req.NodeName); len(msgs) > 0 {
		return fmt.Errorf("node name %q: %s", req.NodeName, strings.Join(msgs, "; "))
	}
	if len(req.Addresses) > maxAddresses {
		return fmt.Errorf("%d addresses: at most %d", len(req.Addresses), maxAddresses)
	}
	for _, a := range req.Addresses {
		if net.ParseIP(a) == nil && len(validation.IsDNS1123Subdomain(a)) > 0 {
			return fmt.Errorf("address %q: neither an IP nor a host name", a)
		}
	}
	return nil
}

// join stores a new token for the node, replacing any earlier one, and
// issues its serving certificate.
func (s *Server) join(ctx context.Context, req wire.JoinRequest) (*wire.JoinResponse, error) {
	token := wire.NodeToken(req.NodeName, randomToken())
	secret := wire.NodeTokenSecret(req.NodeName, token)
	secrets := s.kube.CoreV1().Secrets(wire.NodeTokenNamespace)
	stored, err := secrets.Create(ctx, secret, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var cur *corev1.Secret
		if cur, err = secrets.Get(ctx, secret.Name, metav1.GetOptions{}); err == nil {
			cur.Type, cur.Data = secret.Type, secret.Data
			stored, err = secrets.Update(ctx, cur, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("store token of node %q: %w", req.NodeName, err)
	}
	// Answer once this server's cache holds the token: the agent's next
	// request is authenticated from the cache.
	if _, err := s.store.Get(ctx, nodeTokenKey(req.NodeName), stored.ResourceVersion); err != nil {
		return nil, fmt.Errorf("wait for token of node %q: %w", req.NodeName, err)
	}
	cert, key, err := s.issueNodeServing(req.NodeName, req.Addresses)
	if err != nil {
		return nil, err
	}
	return &wire.JoinResponse{Token: token, ServingCert: string(cert), ServingKey: string(key)}, nil
}

// issueNodeServing signs a serving certificate for a node's agent, with the
// subject a kubelet's serving certificate has. pki writes certificates to
// files only; a scratch directory keeps the key off shared paths.
func (s *Server) issueNodeServing(node string, hosts []string) (certPEM, keyPEM []byte, err error) {
	pkiDir := filepath.Join(s.opts.DataDir, "pki")
	dir, err := os.MkdirTemp(pkiDir, "join-")
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate of node %q: %w", node, err)
	}
	defer os.RemoveAll(dir)
	name := "system:node:" + node
	if _, err := s.ca.EnsureServing(dir, name, hosts); err != nil {
		return nil, nil, fmt.Errorf("serving certificate of node %q: %w", node, err)
	}
	if certPEM, err = os.ReadFile(filepath.Join(dir, name+".crt")); err == nil {
		keyPEM, err = os.ReadFile(filepath.Join(dir, name+".key"))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate of node %q: %w", node, err)
	}
	return certPEM, keyPEM, nil
}

// nodeTokenKey is the storage key of a node's token Secret (see the
// storage package for the key layout).
func nodeTokenKey(node string) string {
	return "/registry/core/secrets/" + wire.NodeTokenNamespace + "/" + wire.NodeTokenSecretName(node)
}

// authenticateNodeToken accepts the tokens join handed out. It reads the
// node's Secret from the storage cache: no etcd read per request.
func (s *Server) authenticateNodeToken(r *http.Request) (*apiserver.User, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, false
	}
	node, ok := wire.NodeOfToken(tok)
	if !ok || len(validation.IsDNS1123Subdomain(node)) > 0 {
		return nil, false
	}
	obj, err := s.store.Get(r.Context(), nodeTokenKey(node), "0")
	if err != nil {
		return nil, false
	}
	secret, ok := obj.(*corev1.Secret)
	if !ok || secret.Type != wire.NodeTokenSecretType || subtle.ConstantTimeCompare(secret.Data["token"], []byte(tok)) != 1 {
		return nil, false
	}
	return &apiserver.User{Name: "system:node:" + node, Groups: []string{"system:nodes", "system:authenticated"}}, true
}

// writeStatus answers with a metav1.Status, which kubectl and client-go print.
func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.Kind, st.APIVersion = "Status", "v1"
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(st.Code))
	json.NewEncoder(w).Encode(&st)
}
