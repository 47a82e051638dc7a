package controlplane

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"wharf.dev/wharf/internal/controllers/cronjob"
	"wharf.dev/wharf/internal/controllers/csrsigning"
	"wharf.dev/wharf/internal/controllers/daemonset"
	"wharf.dev/wharf/internal/controllers/deployment"
	"wharf.dev/wharf/internal/controllers/disruption"
	"wharf.dev/wharf/internal/controllers/endpoints"
	"wharf.dev/wharf/internal/controllers/gc"
	"wharf.dev/wharf/internal/controllers/ingress"
	"wharf.dev/wharf/internal/controllers/job"
	"wharf.dev/wharf/internal/controllers/namespace"
	"wharf.dev/wharf/internal/controllers/nodeipam"
	"wharf.dev/wharf/internal/controllers/nodelifecycle"
	"wharf.dev/wharf/internal/controllers/podautoscaler"
	"wharf.dev/wharf/internal/controllers/podgc"
	"wharf.dev/wharf/internal/controllers/rbacaggregation"
	"wharf.dev/wharf/internal/controllers/replicaset"
	"wharf.dev/wharf/internal/controllers/rootcacert"
	"wharf.dev/wharf/internal/controllers/serviceaccount"
	"wharf.dev/wharf/internal/controllers/servicelb"
	"wharf.dev/wharf/internal/controllers/statefulset"
	"wharf.dev/wharf/internal/controllers/ttlafterfinished"
	"wharf.dev/wharf/internal/controllers/volumebinding"
	"wharf.dev/wharf/internal/controllers/volumeprotection"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/scheduler"
)

// runControllers runs the scheduler and controllers in this process until
// ctx ends, then stops them and returns once they have stopped: one term
// of this server's leadership (leader.go). They reach the API through cfg,
// the fenced loopback client, like any other client. started is told once
// they run, or why they could not start.
func (s *Server) runControllers(ctx context.Context, cfg *rest.Config, started func(error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, err := s.startControllers(ctx, cfg)
	started(err)
	if err != nil {
		cancel()
		if g != nil {
			g.Wait()
		}
		return err
	}
	return g.Wait()
}

// startControllers starts the scheduler and controllers, which stop when
// ctx ends; the group returns once they all have.
func (s *Server) startControllers(ctx context.Context, cfg *rest.Config) (*errgroup.Group, error) {
	g, ctx := errgroup.WithContext(ctx)
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	// The resources the garbage collector and namespace deletion cover:
	// every kind this server serves that can be listed, watched and deleted.
	// Custom resources come and go at run time: both follow them.
	discover := func() ([]gc.Resource, error) { return gc.DiscoverResources(client.Discovery()) }
	gcResources, err := discover()
	if err != nil {
		return nil, fmt.Errorf("discover resources: %w", err)
	}
	namespaced := func() ([]schema.GroupVersionResource, error) {
		rs, err := discover()
		var out []schema.GroupVersionResource
		for _, r := range rs {
			if r.Namespaced {
				out = append(out, r.GVR)
			}
		}
		return out, err
	}

	factory := informers.NewSharedInformerFactory(client, 0)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := func(component string) record.EventRecorder {
		return broadcaster.NewRecorder(resources.NewScheme(), corev1.EventSource{Component: component})
	}
	log := func(component string) *slog.Logger { return s.log.With("component", component) }
	collector := gc.New(log("garbage-collector"), meta, gcResources)
	var nodeOpts []nodelifecycle.Option
	if s.opts.NodeGracePeriod > 0 {
		nodeOpts = append(nodeOpts, nodelifecycle.WithGracePeriod(s.opts.NodeGracePeriod))
	}

	hpaMetrics, err := podautoscaler.NewMetricsSource(cfg)
	if err != nil {
		return nil, err
	}
	hpaScaler, err := podautoscaler.NewScaler(cfg)
	if err != nil {
		return nil, err
	}
	var hpaOpts []podautoscaler.Option
	if s.opts.HPASyncPeriod > 0 {
		hpaOpts = append(hpaOpts, podautoscaler.WithSyncPeriod(s.opts.HPASyncPeriod))
	}
	if s.opts.HPADownscaleStabilization > 0 {
		hpaOpts = append(hpaOpts, podautoscaler.WithDownscaleStabilization(s.opts.HPADownscaleStabilization))
	}

	// Constructors register their informers: start the factories after.
	type runner interface{ Run(context.Context, int) }
	runners := map[string]runner{
		"replicaset-controller":     replicaset.New(log("replicaset-controller"), client, factory, recorder("replicaset-controller")),
		"deployment-controller":     deployment.New(log("deployment-controller"), client, factory, recorder("deployment-controller")),
		"daemonset-controller":      daemonset.New(log("daemonset-controller"), client, factory, recorder("daemonset-controller")),
		"disruption-controller":     disruption.New(log("disruption-controller"), client, factory, recorder("controllermanager")),
		"statefulset-controller":    statefulset.New(log("statefulset-controller"), client, factory, recorder("statefulset-controller")),
		"cronjob-controller":        cronjob.New(log("cronjob-controller"), client, factory, recorder("cronjob-controller")),
		"job-controller":            job.New(log("job-controller"), client, factory, recorder("job-controller")),
		"ttl-after-finished":        ttlafterfinished.New(log("ttl-after-finished-controller"), client, factory),
		"nodelifecycle-controller":  nodelifecycle.New(log("nodelifecycle-controller"), client, factory, recorder("node-controller"), nodeOpts...),
		"namespace-controller":      namespace.New(log("namespace-controller"), client, meta, factory, namespaced),
		"serviceaccount-controller": serviceaccount.New(log("serviceaccount-controller"), client, factory),
		"root-ca-cert-publisher":    rootcacert.New(log("root-ca-cert-publisher"), client, factory, s.ca.CertPEM),
		"podgc-controller":          podgc.New(log("podgc-controller"), client, factory),
		"endpoints-controller":      endpoints.New(log("endpoints-controller"), client, factory),
		"nodeipam-controller":       nodeipam.New(log("nodeipam-controller"), client, factory, s.clusterCIDR, nodeipam.WithMaskSize(s.opts.NodeCIDRMaskSize)),
		"ingress-controller":        ingress.New(log("ingress-controller"), client, factory, recorder("ingress-controller")),
		"servicelb-controller": servicelb.New(log("servicelb-controller"), client, factory, recorder("service-lb-controller"), s.lbPool,
			servicelb.WithPoolConfigMap(s.serviceCIDR, s.clusterCIDR), servicelb.WithReserved(s.reservedLB()...)),
		"clusterrole-aggregation": rbacaggregation.New(log("clusterrole-aggregation"), client, factory),
		// Signs with the CA key this process holds: clients never need it.
		"csrsigning-controller": csrsigning.New(log("csrsigning-controller"), client, factory, s.ca),
		"garbage-collector":     collector,
		"horizontal-pod-autoscaler": podautoscaler.New(log("horizontal-pod-autoscaler"), client, factory, recorder("horizontal-pod-autoscaler"),
			hpaMetrics, hpaScaler, hpaOpts...),
	}
	runners["persistentvolume-binder"] = volumebinding.New(log("persistentvolume-binder"), client, factory, recorder("persistentvolume-controller"))
	runners["volume-protection"] = volumeprotection.New(log("volume-protection"), client, factory)
	sched := scheduler.New(log("scheduler"), client, factory, recorder("default-scheduler"))

	factory.Start(ctx.Done())
	// Once ctx ends: the informers stop, and the events still queued go out
	// (or are refused by the fence, if the lease is already lost).
	g.Go(func() error { <-ctx.Done(); factory.Shutdown(); broadcaster.Shutdown(); return nil })
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return g, fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	g.Go(func() error { sched.Run(ctx); return nil })
	for _, r := range runners {
		g.Go(func() error { r.Run(ctx, 5); return nil })
	}
	g.Go(func() error {
		rediscover(ctx, log("garbage-collector"), rediscoverEvery, discover, collector.SetResources)
		return nil
	})
	s.startServiceController(ctx, g, cfg)
	return g, nil
}

// rediscoverEvery is how often the garbage collector's resources are
// discovered again. Kubernetes waits 30 s; here discovery is two requests
// over loopback answered from memory, and an unchanged answer changes
// nothing, so a short interval costs little and makes a new custom
// resource's objects collectable about as soon as kubectl can create them.
// (Namespace deletion does not wait for it: it discovers on each pass.)
const rediscoverEvery = 2 * time.Second

// rediscover hands the served resources to set every interval until ctx
// ends, as Kubernetes' garbage collector resyncs its monitors. A failed or
// partial discovery keeps the last good set: a group missing for a moment
// must not stop its informers and forget its objects.
func rediscover(ctx context.Context, logger *slog.Logger, every time.Duration, discover func() ([]gc.Resource, error), set func([]gc.Resource)) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rs, err := discover()
		switch {
		case err != nil && !failing:
			logger.Warn("resource discovery failed, keeping the last resources", "err", err)
		case err != nil:
			logger.Debug("resource discovery failed, keeping the last resources", "err", err)
		}
		failing = err != nil
		if err == nil {
			set(rs)
		}
	}
}
