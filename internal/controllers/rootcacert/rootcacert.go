// Package rootcacert keeps the ConfigMap kube-root-ca.crt in every active
// namespace, holding the cluster's CA certificate (key ca.crt), like
// kube-controller-manager's root-ca-cert-publisher. Pods' service account
// volumes project it, so that in-cluster clients verify the API server.
// A changed or deleted ConfigMap is put back.
package rootcacert

import (
	"context"
	"fmt"
	"log/slog"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// Name is the ConfigMap's name, DataKey its key.
const (
	Name    = "kube-root-ca.crt"
	DataKey = "ca.crt"
)

const description = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."

// Controller publishes the CA.
type Controller struct {
	logger *slog.Logger
	client kubernetes.Interface
	caPEM  string

	nsLister corelisters.NamespaceLister
	cmLister corelisters.ConfigMapLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller publishing caPEM on factory's namespace and
// configmap informers.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, caPEM []byte) *Controller {
	c := &Controller{
		logger: logger.With("controller", "root-ca-cert-publisher"),
		client: client,
		caPEM:  string(caPEM),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "root_ca_cert_publisher"}),
	}
	nsInf := factory.Core().V1().Namespaces()
	cmInf := factory.Core().V1().ConfigMaps()
	c.nsLister, c.cmLister = nsInf.Lister(), cmInf.Lister()
	c.synced = controllerutil.AddEventHandlers(c.logger,
		controllerutil.EventHandler{Informer: nsInf.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    c.namespaceChanged,
			UpdateFunc: func(_, obj any) { c.namespaceChanged(obj) },
		}},
		controllerutil.EventHandler{Informer: cmInf.Informer(), Handler: cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) { c.configMapChanged(obj) },
			DeleteFunc: c.configMapChanged,
		}})
	return c
}

func (c *Controller) namespaceChanged(obj any) {
	if ns, ok := obj.(*v1.Namespace); ok && controllerutil.NamespaceActive(ns) {
		c.queue.Add(ns.Name)
	}
}

func (c *Controller) configMapChanged(obj any) {
	if cm, ok := controllerutil.DeletedObject[*v1.ConfigMap](obj); ok && cm.Name == Name {
		c.queue.Add(cm.Namespace)
	}
}

// Run publishes the CA until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync,
		controllerutil.KeyAttr("namespace"), controllerutil.FailureMessage("cannot publish the root CA, retrying"))
}

func (c *Controller) sync(ctx context.Context, namespace string) error {
	ns, err := c.nsLister.Get(namespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %q: %w", namespace, err)
	}
	if !controllerutil.NamespaceActive(ns) {
		return nil
	}
	cm, err := c.cmLister.ConfigMaps(namespace).Get(Name)
	switch {
	case apierrors.IsNotFound(err):
		_, err = c.client.CoreV1().ConfigMaps(namespace).Create(ctx, &v1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: Name, Annotations: map[string]string{"kubernetes.io/description": description}},
			Data:       map[string]string{DataKey: c.caPEM},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, v1.NamespaceTerminatingCause) {
			return nil // the cache was behind, or the namespace is going
		}
		return err
	case err != nil:
		return err
	}
	if len(cm.Data) == 1 && cm.Data[DataKey] == c.caPEM && len(cm.BinaryData) == 0 {
		return nil
	}
	cm = cm.DeepCopy()
	cm.Data, cm.BinaryData = map[string]string{DataKey: c.caPEM}, nil
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations["kubernetes.io/description"] = description
	_, err = c.client.CoreV1().ConfigMaps(namespace).Update(ctx, cm, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		c.queue.Add(namespace) // deleted or changed meanwhile: look again
		return nil
	}
	return err
}
