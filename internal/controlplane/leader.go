package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"wharf.dev/wharf/internal/leaderelect"
	"wharf.dev/wharf/internal/pki"
)

// Leader election (docs/ha.md): API servers are active-active, but the
// scheduler and the controllers run on one server at a time, the holder
// of the Lease kube-system/wharf-controllers. One lease covers them all,
// not upstream's two (kube-scheduler, kube-controller-manager): they share
// one informer cache here, which one term builds and drops whole, and a
// failover then waits for one election instead of two.
const (
	leaderLeaseNamespace = "kube-system"
	leaderLeaseName      = "wharf-controllers"
)

// serverIDFile keeps this server's id in its data dir.
const serverIDFile = "server-id"

var serverIDPattern = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$`)

// loadServerID returns the id made at this data dir's first start. The id
// names the server in the controllers' lease, in its API server lease
// (apiserver-<id>) and in its controllers' field manager. It must outlive
// a restart: client-go lets a candidate take an unexpired lease only if
// the lease names it, so a server that comes back at once (a crash, an
// upgrade) leads again without waiting out its own old lease. The
// listening address would not do: port 0 picks a new port each start, and
// two data dirs may share an address over time.
func loadServerID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, serverIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id := strings.TrimSpace(string(data))
		if !serverIDPattern.MatchString(id) {
			return "", fmt.Errorf("%s: %q is not a server id (lowercase letters, digits and dashes); remove the file to make a new one", path, id)
		}
		return id, nil
	case errors.Is(err, os.ErrNotExist):
		id := randomToken()[:12]
		if err := pki.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("write server id: %w", err)
		}
		return id, nil
	default:
		return "", fmt.Errorf("read server id: %w", err)
	}
}

// controllersUserAgent is the user agent of this server's controllers: the
// API server records writes under its part before the "/" as field
// manager, so an object's managedFields say which server's controllers
// wrote it, and when.
func controllersUserAgent(id string) string {
	return "wharf-controllers-" + id + "/" + Version.GitVersion
}

// startElection makes this server a candidate for the controllers' lease
// and returns once the first election is decided: if this server won it,
// once its controllers run (as a single server's Start always did); if
// another holds it, at once.
func (s *Server) startElection(ctx context.Context) error {
	o := s.opts
	e, err := leaderelect.New(leaderelect.Config{
		Logger:        s.log.With("component", "leader-election"),
		Client:        s.kube,
		Namespace:     leaderLeaseNamespace,
		Name:          leaderLeaseName,
		Identity:      s.id,
		LeaseDuration: o.LeaderElectLeaseDuration,
		RenewDeadline: o.LeaderElectRenewDeadline,
		RetryPeriod:   o.LeaderElectRetryPeriod,
		Metrics:       s.registry,
	})
	if err != nil {
		return err
	}
	// The controllers' client: this server's name as user agent, and every
	// write through the fence.
	cfg := rest.CopyConfig(s.Loopback)
	cfg.UserAgent = controllersUserAgent(s.id)
	cfg.Wrap(e.Fence().Wrap)

	started := make(chan error, 1)
	electCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.stopElection = func() { cancel(); <-done }
	s.goRun(func() error {
		defer close(done)
		e.Run(electCtx, func(ctx context.Context) error {
			return s.runControllers(ctx, cfg, func(err error) {
				select {
				case started <- err:
				default:
				}
			})
		})
		return nil
	})
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-e.Observed():
	case <-time.After(time.Minute):
		return fmt.Errorf("leader election: lease %s/%s not readable after a minute", leaderLeaseNamespace, leaderLeaseName)
	}
	if e.Holder() != e.Identity() {
		s.log.Info("another server runs the controllers", "holder", e.Holder())
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-started:
		if err != nil {
			// The elector releases the lease and tries again; a server
			// that cannot start its controllers says so.
			return fmt.Errorf("start controllers: %w", err)
		}
	case <-time.After(time.Minute):
		return errors.New("start controllers: timed out")
	}
	return nil
}

// leave hands over what this server does for the others before it stops:
// it releases the controllers' lease, so that another server leads at
// once, and withdraws itself from the kubernetes service.
func (s *Server) leave() {
	s.leaveOnce.Do(func() {
		if s.stopElection != nil {
			s.stopElection()
		}
		if s.stopEndpoint != nil {
			s.stopEndpoint()
		}
	})
}

// startMetrics runs the built-in metrics-server on every server, leader or
// not: metrics.k8s.io is answered by whichever API server a client (kubectl
// top, the leader's HPA controller) reaches. It only reads, so its node and
// pod informers are its own and unfenced, and live as long as the server.
func (s *Server) startMetrics(ctx context.Context) error {
	client, err := kubernetes.NewForConfig(s.Loopback)
	if err != nil {
		return err
	}
	// The scraper reads pods' name, UID and labels only, and nodes'
	// labels and addresses: the cache keeps little else, so that the
	// leader, which also holds the controllers' full cache, pays little.
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(slimForMetrics))
	s.metrics.SetListers(factory.Core().V1().Nodes().Lister(), factory.Core().V1().Pods().Lister())
	factory.Start(ctx.Done())
	s.goRun(func() error {
		s.metrics.Run(ctx)
		factory.Shutdown()
		return nil
	})
	return nil
}

// slimForMetrics drops what the metrics-server's cache does not use.
func slimForMetrics(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Namespace: o.Namespace, UID: o.UID, Labels: o.Labels, ResourceVersion: o.ResourceVersion,
		}}, nil
	case *corev1.Node:
		o.ManagedFields, o.Status.Images, o.Annotations = nil, nil, nil
		return o, nil
	}
	return obj, nil
}
