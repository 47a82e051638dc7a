package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	agentnode "wharf.dev/wharf/internal/agent/node"
	"wharf.dev/wharf/internal/network/ingress"
	"wharf.dev/wharf/internal/wire"
)

// The node's ingress proxy serves the cluster's Ingresses on the node's
// ports 80 and 443 (--ingress-http, --ingress-https), straight to the
// backends' pods. The services watch feeds it services and endpoint
// slices; a watch of its own, Ingresses, IngressClasses and the TLS
// Secrets (of type kubernetes.io/tls only: no other Secret reaches the
// node for it).
type nodeIngress struct {
	cfg    Config
	client kubernetes.Interface
	proxy  *ingress.Proxy
	// services is closed once the services watch has fed the proxy.
	services <-chan struct{}
	log      *slog.Logger
}

func newNodeIngress(cfg Config, client kubernetes.Interface, log *slog.Logger) *nodeIngress {
	// Redirects to HTTPS name its port when it is not 443 (wharf up's may not be).
	httpsPort := 0
	if _, port, err := net.SplitHostPort(cfg.IngressHTTPS); err == nil {
		httpsPort, _ = strconv.Atoi(port)
	}
	return &nodeIngress{cfg: cfg, client: client, log: log,
		proxy: ingress.New(ingress.Config{Controller: ingress.DefaultController, HTTPSPort: httpsPort, Logger: log})}
}

// Run serves until ctx is done. A port the node cannot bind is logged and
// left unserved, the rest of the node unaffected.
func (n *nodeIngress) Run(ctx context.Context) error {
	httpLn := n.listen(n.cfg.IngressHTTP, "HTTP")
	httpsLn := n.listen(n.cfg.IngressHTTPS, "HTTPS")
	if httpLn == nil && httpsLn == nil {
		<-ctx.Done()
		return nil
	}
	// Where the server's ingress controller sends the ingress load
	// balancer address's traffic.
	go agentnode.Annotate(ctx, n.client, n.cfg.NodeName, wire.IngressPortsAnnotation,
		wire.IngressPorts(portOf(httpLn), portOf(httpsLn)), n.log)
	factory := informers.NewSharedInformerFactory(n.client, 0)
	tlsOnly := informers.NewSharedInformerFactoryWithOptions(n.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()
	}))
	p := n.proxy
	var synced []cache.InformerSynced
	for _, h := range []struct {
		inf    cache.SharedIndexInformer
		update func(any)
		del    func(ns, name string)
	}{
		{factory.Networking().V1().Ingresses().Informer(), func(o any) { p.UpdateIngress(o.(*networkingv1.Ingress)) }, p.DeleteIngress},
		{factory.Networking().V1().IngressClasses().Informer(), func(o any) { p.UpdateIngressClass(o.(*networkingv1.IngressClass)) },
			func(_, name string) { p.DeleteIngressClass(name) }},
		{tlsOnly.Core().V1().Secrets().Informer(), func(o any) { p.UpdateSecret(o.(*corev1.Secret)) }, p.DeleteSecret},
	} {
		reg, err := h.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    h.update,
			UpdateFunc: func(_, o any) { h.update(o) },
			DeleteFunc: func(o any) {
				if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = t.Obj
				}
				if m, err := meta(o); err == nil {
					h.del(m.GetNamespace(), m.GetName())
				}
			},
		})
		if err != nil {
			return fmt.Errorf("ingress: %w", err)
		}
		synced = append(synced, reg.HasSynced)
	}
	factory.Start(ctx.Done())
	tlsOnly.Start(ctx.Done())
	defer factory.Shutdown()
	defer tlsOnly.Shutdown()
	// The first table is built from complete lists: until then every
	// request gets 503, never a 404 of a route not read yet.
	go func() {
		if !cache.WaitForCacheSync(ctx.Done(), synced...) {
			return
		}
		select {
		case <-n.services:
			p.Sync()
		case <-ctx.Done():
		}
	}()
	err := p.Serve(ctx, httpLn, httpsLn)
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// listen binds addr ("" or "-": nothing).
func (n *nodeIngress) listen(addr, what string) net.Listener {
	if addr == "" || addr == "-" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		n.log.Error("ingress "+what+" not served", "address", addr, "err", err)
		return nil
	}
	n.log.Info("ingress listening", "scheme", what, "address", ln.Addr().String())
	return ln
}

// portOf is the port ln listens on; 0 for none.
func portOf(ln net.Listener) int {
	if ln == nil {
		return 0
	}
	return ln.Addr().(*net.TCPAddr).Port
}

func meta(o any) (metav1.Object, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T is not an object", o)
	}
	return m, nil
}
