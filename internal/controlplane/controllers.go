package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/record"

	"wharf.dev/wharf/internal/controllers/deployment"
	"wharf.dev/wharf/internal/controllers/endpoints"
	"wharf.dev/wharf/internal/controllers/gc"
	"wharf.dev/wharf/internal/controllers/ingress"
	"wharf.dev/wharf/internal/controllers/namespace"
	"wharf.dev/wharf/internal/controllers/nodeipam"
	"wharf.dev/wharf/internal/controllers/nodelifecycle"
	"wharf.dev/wharf/internal/controllers/podgc"
	"wharf.dev/wharf/internal/controllers/rbacaggregation"
	"wharf.dev/wharf/internal/controllers/replicaset"
	"wharf.dev/wharf/internal/controllers/serviceaccount"
	"wharf.dev/wharf/internal/controllers/servicelb"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/scheduler"
)

// startControllers starts the scheduler and controllers in this process.
// They reach the API through the loopback client like any other client.
func (s *Server) startControllers(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(s.Loopback)
	if err != nil {
		return err
	}
	meta, err := metadata.NewForConfig(s.Loopback)
	if err != nil {
		return err
	}
	// The resources the garbage collector and namespace deletion cover:
	// every kind this server serves that can be listed, watched and deleted.
	gcResources, err := gc.DiscoverResources(client.Discovery())
	if err != nil {
		return fmt.Errorf("discover resources: %w", err)
	}
	var namespaced []schema.GroupVersionResource
	for _, r := range gcResources {
		if r.Namespaced {
			namespaced = append(namespaced, r.GVR)
		}
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	metaFactory := metadatainformer.NewSharedInformerFactory(meta, 0)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := func(component string) record.EventRecorder {
		return broadcaster.NewRecorder(resources.NewScheme(), corev1.EventSource{Component: component})
	}
	log := func(component string) *slog.Logger { return s.log.With("component", component) }
	var nodeOpts []nodelifecycle.Option
	if s.opts.NodeGracePeriod > 0 {
		nodeOpts = append(nodeOpts, nodelifecycle.WithGracePeriod(s.opts.NodeGracePeriod))
	}

	// Constructors register their informers: start the factories after.
	type runner interface{ Run(context.Context, int) }
	runners := map[string]runner{
		"replicaset-controller":     replicaset.New(log("replicaset-controller"), client, factory, recorder("replicaset-controller")),
		"deployment-controller":     deployment.New(log("deployment-controller"), client, factory, recorder("deployment-controller")),
		"nodelifecycle-controller":  nodelifecycle.New(log("nodelifecycle-controller"), client, factory, recorder("node-controller"), nodeOpts...),
		"namespace-controller":      namespace.New(log("namespace-controller"), client, meta, factory, namespaced),
		"serviceaccount-controller": serviceaccount.New(log("serviceaccount-controller"), client, factory),
		"podgc-controller":          podgc.New(log("podgc-controller"), client, factory),
		"endpoints-controller":      endpoints.New(log("endpoints-controller"), client, factory),
		"nodeipam-controller":       nodeipam.New(log("nodeipam-controller"), client, factory, s.clusterCIDR, nodeipam.WithMaskSize(s.opts.NodeCIDRMaskSize)),
		"ingress-controller":        ingress.New(log("ingress-controller"), client, factory, recorder("ingress-controller")),
		"servicelb-controller": servicelb.New(log("servicelb-controller"), client, factory, recorder("service-lb-controller"), s.lbPool,
			servicelb.WithPoolConfigMap(s.serviceCIDR, s.clusterCIDR)),
		"clusterrole-aggregation": rbacaggregation.New(log("clusterrole-aggregation"), client, factory),
		"garbage-collector":       gc.New(log("garbage-collector"), meta, metaFactory, gcResources),
	}
	sched := scheduler.New(log("scheduler"), client, factory, recorder("default-scheduler"))

	factory.Start(ctx.Done())
	metaFactory.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	s.goRun(func() error { sched.Run(ctx); return nil })
	for _, r := range runners {
		s.goRun(func() error { r.Run(ctx, 5); return nil })
	}
	s.goRun(func() error { <-ctx.Done(); broadcaster.Shutdown(); return nil })
	s.startServiceController(ctx)
	return nil
}
