package controlplane

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

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
	factory := informers.NewSharedInformerFactory(client, 0)
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := func(component string) record.EventRecorder {
		return broadcaster.NewRecorder(resources.NewScheme(), corev1.EventSource{Component: component})
	}
	sched := scheduler.New(s.log.With("component", "scheduler"), client, factory, recorder("default-scheduler"))

	factory.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %v did not sync", typ)
		}
	}
	s.goRun(func() error { sched.Run(ctx); return nil })
	s.goRun(func() error { <-ctx.Done(); broadcaster.Shutdown(); return nil })
	return nil
}
