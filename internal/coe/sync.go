package coe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/resources"
)

const (
	// Finalizer holds a Cluster until its hosts are gone.
	Finalizer = "wharf.dev/cluster"
	// templateAnnotation keeps the template a cluster was made from: a
	// later edit or deletion of the template must not change which
	// provider holds the hosts or the networks new hosts join.
	templateAnnotation = "wharf.dev/template-spec"
)

// env is what every step on a cluster needs besides the Cluster itself.
type env struct {
	ref  provider.ClusterRef
	tmpl wharfv1.ClusterTemplateSpec
	prov provider.Provider
	// labels are the cluster's effective labels (clusterLabels).
	labels map[string]string
}

func (e *env) autoHealing() bool { return e.labels[wharfv1.LabelAutoHealing] == "true" }

// sync reconciles one cluster. It reads the cluster from the API, not the
// informer cache: decisions rest on the status this controller wrote last.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	cl, err := c.obj.clusters.get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster %s: %w", key, err)
	}
	if cl.DeletionTimestamp != nil {
		return c.delete(ctx, cl)
	}
	parent := ctx
	ctx, done := c.track(ctx, cl.UID)
	defer done()
	cl, e, err := c.prepare(ctx, cl)
	if err != nil || e == nil {
		return err
	}
	switch cl.Status.Status {
	case "", wharfv1.StatusCreateInProgress:
		err = c.create(ctx, cl, e)
	case wharfv1.StatusCreateFailed, wharfv1.StatusDeleteInProgress, wharfv1.StatusDeleteFailed:
		// A failed create stays as it is until the user deletes it.
		return nil
	default:
		if cl.Spec.Recover != "" && cl.Spec.Recover != cl.Status.Recovered {
			err = c.recoverQuorum(ctx, cl, e)
			break
		}
		err = c.reconcile(ctx, cl, e)
	}
	if errors.Is(context.Cause(ctx), errDeleting) && parent.Err() == nil {
		// Deletion took over; requeue so it runs next.
		c.queue.Add(key)
		return nil
	}
	return err
}

// prepare makes sure the cluster holds the finalizer and the template it
// is made from, before anything exists that would need cleaning up. A
// cluster that cannot even start (no such template, no such provider) is
// failed; e is nil then.
func (c *Controller) prepare(ctx context.Context, cl *wharfv1.Cluster) (*wharfv1.Cluster, *env, error) {
	raw, ok := cl.Annotations[templateAnnotation]
	if ok && slices.Contains(cl.Finalizers, Finalizer) {
		e, err := c.envFor(ctx, cl, raw)
		if err != nil {
			// The service lost the cluster's provider (configuration): say
			// so and retry, the hosts may still be there.
			if _, werr := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) { st.StatusReason = err.Error() }); werr != nil {
				c.log.Warn("status reason not written", "cluster", cl.Namespace+"/"+cl.Name, "err", werr)
			}
			return nil, nil, fmt.Errorf("cluster %s/%s: %w", cl.Namespace, cl.Name, err)
		}
		return cl, e, nil
	}
	if cl.Status.Status != "" && cl.Status.Status != wharfv1.StatusCreateInProgress {
		return cl, nil, nil
	}
	tmpl, err := c.resolveTemplate(ctx, cl)
	if err == nil {
		if _, perr := c.provider(ctx, cl.Namespace, *tmpl); perr != nil {
			err = fmt.Errorf("template %q: %w", cl.Spec.Template, perr)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, err
		}
		_, werr := c.setStatus(ctx, cl, func(st *wharfv1.ClusterStatus) {
			failStatus(st, wharfv1.StatusCreateFailed, "template", nil, err)
		})
		return nil, nil, werr
	}
	data, err := json.Marshal(tmpl)
	if err != nil {
		return nil, nil, err
	}
	next := cl.DeepCopy()
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[templateAnnotation] = string(data)
	if !slices.Contains(next.Finalizers, Finalizer) {
		next.Finalizers = append(next.Finalizers, Finalizer)
	}
	if cl, err = c.obj.clusters.update(ctx, next); err != nil {
		return nil, nil, fmt.Errorf("cluster %s/%s: add finalizer: %w", next.Namespace, next.Name, err)
	}
	e, err := c.envFor(ctx, cl, string(data))
	return cl, e, err
}

// envFor builds a cluster's env from its template snapshot.
func (c *Controller) envFor(ctx context.Context, cl *wharfv1.Cluster, raw string) (*env, error) {
	var tmpl wharfv1.ClusterTemplateSpec
	if err := json.Unmarshal([]byte(raw), &tmpl); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", templateAnnotation, err)
	}
	prov, err := c.provider(ctx, cl.Namespace, tmpl)
	if err != nil {
		return nil, err
	}
	return &env{
		ref:    provider.ClusterRef{Namespace: cl.Namespace, Name: cl.Name, UID: string(cl.UID)},
		tmpl:   tmpl,
		prov:   prov,
		labels: clusterLabels(cl),
	}, nil
}

// resolveTemplate finds the cluster's template: "name" in the cluster's
// namespace, or "namespace/name" of a public one.
func (c *Controller) resolveTemplate(ctx context.Context, cl *wharfv1.Cluster) (*wharfv1.ClusterTemplateSpec, error) {
	ns, name := resources.TemplateRef(cl)
	if name == "" {
		return nil, errors.New("the cluster names no template")
	}
	t, err := c.obj.templates.get(ctx, ns, name)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", cl.Spec.Template, err)
	}
	if ns != cl.Namespace && !t.Spec.Public {
		return nil, fmt.Errorf("template %q is not public: only project %q may use it", cl.Spec.Template, ns)
	}
	if t.Spec.COE != "" && t.Spec.COE != "kubernetes" {
		return nil, fmt.Errorf("template %q: coe %q is not supported (only kubernetes)", cl.Spec.Template, t.Spec.COE)
	}
	return &t.Spec, nil
}

// clusterLabels are the labels the cluster runs with, by Magnum's rule
// (resources.EffectiveLabels): its own if it has any, else its template's
// (from the cluster's snapshot of it).
func clusterLabels(cl *wharfv1.Cluster) map[string]string {
	t := &wharfv1.ClusterTemplate{}
	_ = json.Unmarshal([]byte(cl.Annotations[templateAnnotation]), &t.Spec)
	return resources.EffectiveLabels(cl, t)
}

// provider returns the provider of a template: a configured one by name,
// else one ProviderFor makes.
func (c *Controller) provider(ctx context.Context, namespace string, tmpl wharfv1.ClusterTemplateSpec) (provider.Provider, error) {
	if p, ok := c.cfg.Providers[tmpl.Provider]; ok {
		return p, nil
	}
	if c.cfg.ProviderFor != nil {
		return c.cfg.ProviderFor(ctx, namespace, tmpl)
	}
	return nil, fmt.Errorf("provider %q is not configured in this service", tmpl.Provider)
}
