package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/storage"
)

// NodeProxy streams pods' log, exec, attach and portforward requests to
// the agent of the node that runs the pod, as kube-apiserver does to a
// kubelet: https://<InternalIP>:<daemonEndpoints.kubeletEndpoint.Port>
// /containerLogs, /exec, /attach, /portForward. Upgrades (SPDY, WebSocket)
// pass through, so the agent speaks the streaming protocol with the client.
type NodeProxy struct {
	log       *slog.Logger
	store     *storage.Store
	pods      *resources.Resource
	nodes     *resources.Resource
	transport http.RoundTripper
}

// NewNodeProxy returns a proxy that reads pods and nodes from store and
// reaches agents through transport, which carries the TLS trust and the
// client certificate agents require.
func NewNodeProxy(log *slog.Logger, store *storage.Store, reg *resources.Registry, transport http.RoundTripper) *NodeProxy {
	pods, _ := reg.Get(corev1.SchemeGroupVersion.WithResource("pods"))
	nodes, _ := reg.Get(corev1.SchemeGroupVersion.WithResource("nodes"))
	return &NodeProxy{log: log, store: store, pods: pods, nodes: nodes, transport: transport}
}

// Connect is a ConnectFunc.
func (p *NodeProxy) Connect(ctx context.Context, w http.ResponseWriter, r *http.Request, c ConnectRequest) error {
	if c.Resource != "pods" || c.Subresource == "proxy" {
		return apierrors.NewGenericServerResponse(http.StatusNotImplemented, "", schema.GroupResource{}, "",
			c.Resource+"/"+c.Subresource+" is not supported by this server", 0, false)
	}
	pod, err := p.pod(ctx, c.Namespace, c.Name)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	path, query, err := agentRequest(pod, c.Subresource, r.URL.Query())
	if err != nil {
		return err
	}
	host, err := p.agentHost(ctx, pod.Spec.NodeName)
	if err != nil {
		return err
	}
	target := &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: query.Encode()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = ""
			// The agent trusts this server's client certificate; the
			// user's credentials stay here.
			pr.Out.Header.Del("Authorization")
		},
		Transport: p.transport,
		// Flush every write at once: logs -f and exec output are streams.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			p.log.Warn("agent unreachable", "node", pod.Spec.NodeName, "url", target.String(), "err", err)
			st := apierrors.NewServiceUnavailable(fmt.Sprintf("error dialing backend: node %q: %v", pod.Spec.NodeName, err)).ErrStatus
			st.SetGroupVersionKind(metav1.SchemeGroupVersion.WithKind("Status"))
			writeJSON(w, int(st.Code), &st)
		},
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	rp.ServeHTTP(w, r.WithContext(ctx))
	return nil
}

func (p *NodeProxy) pod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	obj, err := p.store.Get(ctx, objectKey(p.pods, namespace, name), "")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	if err != nil {
		return nil, fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("pod %s/%s: stored object is %T", namespace, name, obj)
	}
	return pod, nil
}

// agentHost returns host:port of a node's agent.
func (p *NodeProxy) agentHost(ctx context.Context, name string) (string, error) {
	obj, err := p.store.Get(ctx, objectKey(p.nodes, "", name), "")
	if errors.Is(err, storage.ErrNotFound) {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q of the pod does not exist", name))
	}
	if err != nil {
		return "", fmt.Errorf("get node %q: %w", name, err)
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return "", fmt.Errorf("node %q: stored object is %T", name, obj)
	}
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	addr := nodeAddress(node)
	if port <= 0 || addr == "" {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q reports no agent address and port", name))
	}
	return net.JoinHostPort(addr, strconv.Itoa(int(port))), nil
}

// nodeAddress prefers the InternalIP, as agents sign their serving
// certificates for it.
func nodeAddress(n *corev1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}
