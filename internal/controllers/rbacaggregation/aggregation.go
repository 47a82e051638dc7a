// Package rbacaggregation keeps the rules of every ClusterRole with an
// aggregationRule equal to the union of the rules of the ClusterRoles its
// selectors match, as Kubernetes' clusterrole-aggregation controller does:
// a chart's ClusterRole labelled rbac.authorization.k8s.io/aggregate-to-edit
// widens edit (and, through edit, admin).
package rbacaggregation

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"wharf.dev/wharf/internal/authz"
	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// Controller aggregates ClusterRoles.
type Controller struct {
	log    *slog.Logger
	client kubernetes.Interface
	roles  rbaclisters.ClusterRoleLister
	synced []cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// New builds the controller on factory's ClusterRole informer.
func New(log *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory) *Controller {
	c := &Controller{
		log: log.With("controller", "clusterrole-aggregation"), client: client,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "clusterrole-aggregation"}),
	}
	inf := factory.Rbac().V1().ClusterRoles()
	c.roles = inf.Lister()
	// Any change may matter to any aggregating role: queue them all.
	changed := func(any) { c.enqueueAggregating() }
	c.synced = controllerutil.AddEventHandlers(c.log, controllerutil.EventHandler{Informer: inf.Informer(), Handler: cache.ResourceEventHandlerFuncs{
		AddFunc: changed, UpdateFunc: func(_, o any) { changed(o) }, DeleteFunc: changed,
	}})
	return c
}

func (c *Controller) enqueueAggregating() {
	roles, err := c.roles.List(labels.Everything())
	if err != nil {
		return
	}
	for _, r := range roles {
		if r.AggregationRule != nil {
			c.queue.Add(r.Name)
		}
	}
}

// Run aggregates until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.log, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("clusterrole"))
}

func (c *Controller) sync(ctx context.Context, name string) error {
	role, err := c.roles.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil || role.AggregationRule == nil {
		return err
	}
	all, err := c.roles.List(labels.Everything())
	if err != nil {
		return err
	}
	rules := authz.Aggregate(role, all)
	if equality.Semantic.DeepEqual(rules, role.Rules) {
		return nil
	}
	updated := role.DeepCopy()
	updated.Rules = rules
	if _, err := c.client.RbacV1().ClusterRoles().Update(ctx, updated, metav1.UpdateOptions{FieldManager: "clusterrole-aggregation-controller"}); err != nil {
		return fmt.Errorf("aggregate clusterrole %q: %w", name, err)
	}
	return nil
}
