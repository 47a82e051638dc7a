package wire

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Node tokens authenticate agents as system:node:<node> once they joined,
// and the cluster service's clusters as pullers from its registry. Each is
// kept in a Secret of NodeTokenSecretType in NodeTokenNamespace, so every
// server of the cluster knows it.
const (
	NodeTokenNamespace = "kube-system"
	// NodeTokenSecretType is the type of the Secrets that hold node tokens.
	NodeTokenSecretType corev1.SecretType = "wharf.dev/node-token"
	// nodeTokenPrefix starts a node token: "wharfnode.<node>.<secret>".
	// The node name says which Secret to compare with, so authentication
	// is one cache lookup.
	nodeTokenPrefix = "wharfnode."
)

// NodeToken is the token of a node with a random secret.
func NodeToken(node, secret string) string { return nodeTokenPrefix + node + "." + secret }

// NodeOfToken returns the node a token claims to be; ok is false when tok
// is not a node token. The caller still compares it with the Secret.
func NodeOfToken(tok string) (node string, ok bool) {
	rest, ok := strings.CutPrefix(tok, nodeTokenPrefix)
	i := strings.LastIndexByte(rest, '.')
	if !ok || i <= 0 {
		return "", false
	}
	return rest[:i], true
}

// NodeTokenSecretName names the Secret of a node's token.
func NodeTokenSecretName(node string) string { return "node-token-" + node }

// NodeTokenSecret is the Secret that keeps a node's token: the token under
// "token", the node's name under "node".
func NodeTokenSecret(node, token string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: NodeTokenNamespace, Name: NodeTokenSecretName(node)},
		Type:       NodeTokenSecretType,
		Data:       map[string][]byte{"token": []byte(token), "node": []byte(node)},
	}
}

// RevokeNodeToken deletes a node's token: its agent is refused from then
// on, until it joins again. For nodes whose host is gone for good.
func RevokeNodeToken(ctx context.Context, kube kubernetes.Interface, node string) error {
	err := kube.CoreV1().Secrets(NodeTokenNamespace).Delete(ctx, NodeTokenSecretName(node), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("revoke token of node %q: %w", node, err)
	}
	return nil
}
