package resources

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// DefaultCreateTimeout bounds CREATE_IN_PROGRESS when a cluster says nothing.
const DefaultCreateTimeout = 10 * time.Minute

// MaxClusterNameLength leaves room in host and node group names, which
// derive from the cluster's (<cluster>-master-<i>, <cluster>-default-worker),
// for them to stay DNS labels.
const MaxClusterNameLength = 40

// masterCounts are the sizes an etcd quorum works with: an even number
// tolerates no more failures than the odd number below it.
var masterCounts = []int32{1, 3, 5, 7}

const masterCountReason = "must be 1, 3, 5 or 7: etcd needs a majority of its members, so an even count survives no more failures than the odd count below it and a larger one only slows writes"

var clusterStatuses = []string{
	wharfv1.StatusCreateInProgress, wharfv1.StatusCreateComplete, wharfv1.StatusCreateFailed,
	wharfv1.StatusUpdateInProgress, wharfv1.StatusUpdateComplete, wharfv1.StatusUpdateFailed,
	wharfv1.StatusDeleteInProgress, wharfv1.StatusDeleteFailed,
}

var healthStatuses = []string{wharfv1.HealthHealthy, wharfv1.HealthUnhealthy, wharfv1.HealthUnknown}

// Clusters is wharf.dev/v1 clusters.
func Clusters() *Resource {
	return &Resource{
		GVR:            wharfv1.SchemeGroupVersion.WithResource("clusters"),
		Kind:           "Cluster",
		SingularName:   "cluster",
		Namespaced:     true,
		ShortNames:     []string{"cl"},
		Categories:     []string{"wharf"},
		New:            func() runtime.Object { return &wharfv1.Cluster{} },
		NewList:        func() runtime.Object { return &wharfv1.ClusterList{} },
		HasStatus:      true,
		Default:        typed(defaultCluster),
		Validate:       typedValidate(validateCluster),
		ValidateUpdate: typedValidateUpdate(validateClusterUpdate),
		ValidateStatus: typedValidateUpdate(validateClusterStatus),
		Admit:          admitCluster,
		ValidateDelete: validateClusterDelete,
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Status", Type: "string", Description: "Where the cluster is in its life: CREATE_IN_PROGRESS, CREATE_COMPLETE, ..."},
			{Name: "Health", Type: "string", Description: "HEALTHY, UNHEALTHY or UNKNOWN, from the cluster's API and nodes."},
			{Name: "Masters", Type: "integer", Description: "The number of control plane hosts."},
			{Name: "Nodes", Type: "integer", Description: "The number of worker hosts of the default node group."},
			{Name: "API", Type: "string", Description: "The cluster's API URL."},
			ageColumn,
			{Name: "Template", Type: "string", Priority: 1, Description: "The cluster template the cluster is made from."},
		},
		Row: typedRowNow(clusterRow),
		Fields: typedFields(func(c *wharfv1.Cluster) fields.Set {
			return fields.Set{"status.status": c.Status.Status, "spec.template": c.Spec.Template}
		}),
	}
}

// TemplateRef returns the namespace and name of a cluster's template:
// "name" is in the cluster's namespace, "namespace/name" another project's.
func TemplateRef(c *wharfv1.Cluster) (namespace, name string) {
	if ns, n, ok := strings.Cut(c.Spec.Template, "/"); ok {
		return ns, n
	}
	return c.Namespace, c.Spec.Template
}

// EffectiveLabels are the labels a cluster runs with, by Magnum's rule:
// its own when it has any (`wharf cluster create --merge-labels` copies
// the template's into them), else its template's (t may be nil).
func EffectiveLabels(c *wharfv1.Cluster, t *wharfv1.ClusterTemplate) map[string]string {
	if len(c.Spec.Labels) > 0 || t == nil {
		return c.Spec.Labels
	}
	return t.Spec.Labels
}

func defaultCluster(c *wharfv1.Cluster) {
	if c.Spec.MasterCount == 0 {
		c.Spec.MasterCount = 1
	}
	if c.Spec.CreateTimeout == nil {
		c.Spec.CreateTimeout = &metav1.Duration{Duration: DefaultCreateTimeout}
	}
}

func validateCluster(c *wharfv1.Cluster) field.ErrorList {
	errs := validateMeta(&c.ObjectMeta, true, nameIsDNS1035Label)
	if len(c.Name) > MaxClusterNameLength {
		errs = append(errs, field.TooLong(field.NewPath("metadata", "name"), "", MaxClusterNameLength))
	}
	p := field.NewPath("spec")
	s := &c.Spec
	errs = append(errs, validateTemplateRef(s.Template, p.Child("template"))...)
	mp := p.Child("masterCount")
	switch {
	case !oneOf(s.MasterCount, masterCounts...):
		errs = append(errs, field.Invalid(mp, s.MasterCount, masterCountReason))
	}
	errs = append(errs, validateNonnegative(int64(s.NodeCount), p.Child("nodeCount"))...)
	if t := s.CreateTimeout; t != nil && t.Duration <= 0 {
		errs = append(errs, field.Invalid(p.Child("createTimeout"), t.Duration.String(), "must be greater than 0"))
	}
	errs = append(errs, validateFromBackup(s.FromBackup, p.Child("fromBackup"))...)
	return append(errs, validateMagnumLabels(s.Labels, p.Child("labels"))...)
}

func validateTemplateRef(ref string, p *field.Path) field.ErrorList {
	if ref == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	parts := strings.Split(ref, "/")
	if len(parts) > 2 {
		return field.ErrorList{field.Invalid(p, ref, `must be "name" or "project/name"`)}
	}
	var errs field.ErrorList
	for _, part := range parts {
		for _, msg := range nameIsDNSSubdomain(part, false) {
			errs = append(errs, field.Invalid(p, ref, msg))
		}
	}
	return errs
}

// validateClusterUpdate: the template and masters make the cluster what
// it is; node counts and labels may change.
func validateClusterUpdate(c, old *wharfv1.Cluster) field.ErrorList {
	p := field.NewPath("spec")
	errs := apivalidation.ValidateImmutableField(c.Spec.Template, old.Spec.Template, p.Child("template"))
	errs = append(errs, apivalidation.ValidateImmutableField(c.Spec.FromBackup, old.Spec.FromBackup, p.Child("fromBackup"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(c.Spec.MasterCount, old.Spec.MasterCount, p.Child("masterCount"))...)
	if c.Spec.Recover != old.Spec.Recover {
		errs = append(errs, validateRecover(c, old, p.Child("recover"))...)
	}
	return errs
}

// validateRecover: a quorum is rebuilt only where it is lost, so that a
// recover asked of a healthy cluster touches nothing.
func validateRecover(c, old *wharfv1.Cluster, p *field.Path) field.ErrorList {
	etcd := old.Status.HealthStatusReason["etcd"]
	switch {
	case c.Spec.Recover == "":
		return field.ErrorList{field.Invalid(p, c.Spec.Recover, "cannot be cleared")}
	case old.Spec.MasterCount <= 1:
		return field.ErrorList{field.Forbidden(p, "a cluster of one master has no quorum to rebuild: restore it from a backup instead")}
	case old.DeletionTimestamp != nil:
		return field.ErrorList{field.Forbidden(p, "the cluster is being deleted")}
	case !strings.HasPrefix(etcd, QuorumLostReason):
		why := etcd
		if why == "" {
			why = "its health is " + orNone(old.Status.HealthStatus)
		}
		return field.ErrorList{field.Forbidden(p, fmt.Sprintf("the cluster's etcd quorum is not lost (%s): nothing to recover", why))}
	}
	return nil
}

// QuorumLostReason starts the etcd health reason of a cluster whose etcd
// lost its quorum; recover is accepted then only.
const QuorumLostReason = "etcd quorum lost"

func validateClusterStatus(c, _ *wharfv1.Cluster) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status")
	s := &c.Status
	if s.Status != "" && !oneOf(s.Status, clusterStatuses...) {
		errs = append(errs, field.NotSupported(p.Child("status"), s.Status, clusterStatuses))
	}
	if s.HealthStatus != "" && !oneOf(s.HealthStatus, healthStatuses...) {
		errs = append(errs, field.NotSupported(p.Child("healthStatus"), s.HealthStatus, healthStatuses))
	}
	if strings.HasSuffix(s.Status, "_FAILED") && s.StatusReason == "" {
		errs = append(errs, field.Required(p.Child("statusReason"), "a failure says why"))
	}
	return append(errs, validateNonnegative(s.ObservedGeneration, p.Child("observedGeneration"))...)
}

// admitCluster checks, on create, that the template exists and that the
// cluster's project may use it: its own templates and public ones.
func admitCluster(ctx context.Context, obj, old runtime.Object, objs Objects) error {
	c := obj.(*wharfv1.Cluster)
	if old != nil {
		return nil // the template cannot change, and may be hidden since
	}
	ns, name := TemplateRef(c)
	o, err := objs.Get(ctx, wharfv1.SchemeGroupVersion.WithResource("clustertemplates"), ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cluster %s/%s: read template %s/%s: %w", c.Namespace, c.Name, ns, name, err)
	}
	usable := err == nil && (ns == c.Namespace || o.(*wharfv1.ClusterTemplate).Spec.Public)
	if !usable {
		// A private template of another project is as good as missing:
		// saying more would tell what other projects have.
		return apierrors.NewInvalid(wharfv1.SchemeGroupVersion.WithKind("Cluster").GroupKind(), c.Name, field.ErrorList{field.Invalid(
			field.NewPath("spec", "template"), c.Spec.Template, fmt.Sprintf("cluster template %q not found in project %q", c.Spec.Template, c.Namespace))})
	}
	return admitFromBackup(ctx, c, objs)
}

// errClusterCreating is why a cluster being created may not be deleted:
// the controller is making hosts it would not know to remove.
var errClusterCreating = errors.New("wait until it is CREATE_COMPLETE or CREATE_FAILED")

func validateClusterDelete(_ context.Context, obj runtime.Object, _ Objects) error {
	c := obj.(*wharfv1.Cluster)
	if c.Status.Status != wharfv1.StatusCreateInProgress {
		return nil
	}
	return apierrors.NewConflict(wharfv1.Resource("clusters"), c.Name,
		fmt.Errorf("cluster %s is being created (%s): %w", c.Name, c.Status.Status, errClusterCreating))
}

func clusterRow(c *wharfv1.Cluster, now time.Time) []any {
	return []any{
		c.Name, orNone(c.Status.Status), orNone(c.Status.HealthStatus), int64(c.Spec.MasterCount), int64(c.Spec.NodeCount),
		orNone(c.Status.APIAddress), age(c.CreationTimestamp, now), c.Spec.Template,
	}
}
