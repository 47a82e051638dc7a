package resources

import (
	"context"
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

// maxNodeGroupNameLength keeps host names <group>-<i> DNS labels up to
// three-digit indexes.
const maxNodeGroupNameLength = 59

var nodeGroupRoles = []string{wharfv1.RoleMaster, wharfv1.RoleWorker}

// NodeGroups is wharf.dev/v1 nodegroups.
func NodeGroups() *Resource {
	return &Resource{
		GVR:            wharfv1.SchemeGroupVersion.WithResource("nodegroups"),
		Kind:           "NodeGroup",
		SingularName:   "nodegroup",
		Namespaced:     true,
		ShortNames:     []string{"ng"},
		Categories:     []string{"wharf"},
		New:            func() runtime.Object { return &wharfv1.NodeGroup{} },
		NewList:        func() runtime.Object { return &wharfv1.NodeGroupList{} },
		HasStatus:      true,
		Default:        typed(defaultNodeGroup),
		Validate:       typedValidate(validateNodeGroup),
		ValidateUpdate: typedValidateUpdate(validateNodeGroupUpdate),
		ValidateStatus: typedValidateUpdate(validateNodeGroupStatus),
		Admit:          admitNodeGroup,
		ValidateDelete: validateNodeGroupDelete,
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Cluster", Type: "string", Description: "The cluster the group's hosts belong to."},
			{Name: "Role", Type: "string", Description: "master or worker."},
			{Name: "Nodes", Type: "string", Description: "Hosts the group has, of those it wants."},
			{Name: "Status", Type: "string", Description: "Where the group is in its life: CREATE_COMPLETE, UPDATE_IN_PROGRESS, ..."},
			ageColumn,
		},
		Row: typedRowNow(nodeGroupRow),
		Fields: typedFields(func(g *wharfv1.NodeGroup) fields.Set {
			return fields.Set{"spec.cluster": g.Spec.Cluster, "spec.role": g.Spec.Role}
		}),
	}
}

// DefaultMasterGroup and DefaultWorkerGroup name a cluster's default node
// groups; NodeGroupName names another group of the cluster.
func DefaultMasterGroup(cluster string) string { return cluster + "-default-master" }

// DefaultWorkerGroup is the group whose size is Cluster.spec.nodeCount.
func DefaultWorkerGroup(cluster string) string { return cluster + "-default-worker" }

// NodeGroupName is the object name of a cluster's group ("gpu" → "demo-gpu").
func NodeGroupName(cluster, group string) string { return cluster + "-" + group }

// HostPrefix is what the names of a group's hosts start with, before
// their index: <cluster>-master-, <cluster>-node- (the default workers)
// or <group>-.
func HostPrefix(g *wharfv1.NodeGroup) string {
	switch g.Name {
	case DefaultMasterGroup(g.Spec.Cluster):
		return g.Spec.Cluster + "-master-"
	case DefaultWorkerGroup(g.Spec.Cluster):
		return g.Spec.Cluster + "-node-"
	}
	return g.Name + "-"
}

func defaultNodeGroup(g *wharfv1.NodeGroup) {
	if g.Spec.Role == "" {
		g.Spec.Role = wharfv1.RoleWorker
	}
}

func validateNodeGroup(g *wharfv1.NodeGroup) field.ErrorList {
	errs := validateMeta(&g.ObjectMeta, true, nameIsDNS1035Label)
	np := field.NewPath("metadata", "name")
	p := field.NewPath("spec")
	s := &g.Spec
	errs = append(errs, validateName(nameIsDNS1035Label, s.Cluster, p.Child("cluster"))...)
	switch {
	case len(g.Name) > maxNodeGroupNameLength:
		errs = append(errs, field.TooLong(np, "", maxNodeGroupNameLength))
	case s.Cluster != "" && !strings.HasPrefix(g.Name, s.Cluster+"-"):
		errs = append(errs, field.Invalid(np, g.Name, fmt.Sprintf("must be %s-<group>: the cluster's name, a dash and the group's", s.Cluster)))
	}
	rp := p.Child("role")
	switch {
	case !oneOf(s.Role, nodeGroupRoles...):
		errs = append(errs, field.NotSupported(rp, s.Role, nodeGroupRoles))
	case s.Role == wharfv1.RoleMaster && g.Name != DefaultMasterGroup(s.Cluster):
		errs = append(errs, field.Invalid(rp, s.Role, fmt.Sprintf("only %s holds the masters", DefaultMasterGroup(s.Cluster))))
	case s.Role == wharfv1.RoleWorker && g.Name == DefaultMasterGroup(s.Cluster):
		errs = append(errs, field.Invalid(rp, s.Role, "the default master group holds the masters"))
	case s.Role == wharfv1.RoleMaster && !oneOf(s.NodeCount, masterCounts...):
		errs = append(errs, field.Invalid(p.Child("nodeCount"), s.NodeCount, masterCountReason))
	}
	errs = append(errs, validateNodeCounts(s, p)...)
	errs = append(errs, validateLabels(s.Labels, p.Child("labels"))...)
	errs = append(errs, validateTaints(s.Taints, p.Child("taints"))...)
	seen := map[string]bool{}
	prefix := HostPrefix(g)
	for i, h := range s.NodesToRemove {
		ip := p.Child("nodesToRemove").Index(i)
		switch {
		case seen[h]:
			errs = append(errs, field.Duplicate(ip, h))
		case !strings.HasPrefix(h, prefix):
			errs = append(errs, field.Invalid(ip, h, fmt.Sprintf("not a host of node group %s: its hosts are %s<i>", g.Name, prefix)))
		}
		seen[h] = true
	}
	return errs
}

func validateNodeCounts(s *wharfv1.NodeGroupSpec, p *field.Path) field.ErrorList {
	errs := validateNonnegative(int64(s.NodeCount), p.Child("nodeCount"))
	errs = append(errs, validateNonnegative(int64(s.MinNodeCount), p.Child("minNodeCount"))...)
	if s.NodeCount < s.MinNodeCount {
		errs = append(errs, field.Invalid(p.Child("nodeCount"), s.NodeCount, fmt.Sprintf("must be at least minNodeCount (%d)", s.MinNodeCount)))
	}
	if mx := s.MaxNodeCount; mx != nil {
		switch {
		case *mx < s.MinNodeCount:
			errs = append(errs, field.Invalid(p.Child("maxNodeCount"), *mx, fmt.Sprintf("must be at least minNodeCount (%d)", s.MinNodeCount)))
		case s.NodeCount > *mx:
			errs = append(errs, field.Invalid(p.Child("nodeCount"), s.NodeCount, fmt.Sprintf("must be at most maxNodeCount (%d)", *mx)))
		}
	}
	return errs
}

func validateNodeGroupUpdate(g, old *wharfv1.NodeGroup) field.ErrorList {
	p := field.NewPath("spec")
	errs := apivalidation.ValidateImmutableField(g.Spec.Cluster, old.Spec.Cluster, p.Child("cluster"))
	return append(errs, apivalidation.ValidateImmutableField(g.Spec.Role, old.Spec.Role, p.Child("role"))...)
}

func validateNodeGroupStatus(g, _ *wharfv1.NodeGroup) field.ErrorList {
	p := field.NewPath("status")
	var errs field.ErrorList
	if s := g.Status.Status; s != "" && !oneOf(s, clusterStatuses...) {
		errs = append(errs, field.NotSupported(p.Child("status"), s, clusterStatuses))
	}
	return append(errs, validateNonnegative(g.Status.ObservedGeneration, p.Child("observedGeneration"))...)
}

// admitNodeGroup: a new group belongs to a cluster of its project that is
// not going away.
func admitNodeGroup(ctx context.Context, obj, old runtime.Object, objs Objects) error {
	if old != nil {
		return nil
	}
	g := obj.(*wharfv1.NodeGroup)
	c, err := clusterOf(ctx, objs, "NodeGroup", g.Namespace, g.Name, g.Spec.Cluster)
	switch {
	case err != nil:
		return err
	case c.DeletionTimestamp != nil:
		return apierrors.NewConflict(wharfv1.Resource("nodegroups"), g.Name, fmt.Errorf("cluster %s is being deleted", c.Name))
	}
	return nil
}

// validateNodeGroupDelete keeps the default groups while their cluster
// lives: they go with it (its garbage collection), or it is resized.
func validateNodeGroupDelete(ctx context.Context, obj runtime.Object, objs Objects) error {
	g := obj.(*wharfv1.NodeGroup)
	if g.Name != DefaultMasterGroup(g.Spec.Cluster) && g.Name != DefaultWorkerGroup(g.Spec.Cluster) {
		return nil
	}
	c, err := getCluster(ctx, objs, g.Namespace, g.Spec.Cluster)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case c.DeletionTimestamp == nil:
		return apierrors.NewConflict(wharfv1.Resource("nodegroups"), g.Name,
			fmt.Errorf("%s is a default node group of cluster %s: it goes with the cluster (resize it to change its size)", g.Name, c.Name))
	}
	return nil
}

// clusterOf gets the cluster a new object of kind names in spec.cluster;
// one that does not exist is a 422 on that field.
func clusterOf(ctx context.Context, objs Objects, kind, namespace, name, cluster string) (*wharfv1.Cluster, error) {
	c, err := getCluster(ctx, objs, namespace, cluster)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewInvalid(wharfv1.SchemeGroupVersion.WithKind(kind).GroupKind(), name, field.ErrorList{field.Invalid(
			field.NewPath("spec", "cluster"), cluster, fmt.Sprintf("cluster %q not found in project %q", cluster, namespace))})
	}
	return c, err
}

func getCluster(ctx context.Context, objs Objects, namespace, name string) (*wharfv1.Cluster, error) {
	o, err := objs.Get(ctx, wharfv1.SchemeGroupVersion.WithResource("clusters"), namespace, name)
	if err != nil {
		return nil, err
	}
	return o.(*wharfv1.Cluster), nil
}

func nodeGroupRow(g *wharfv1.NodeGroup, now time.Time) []any {
	return []any{
		g.Name, g.Spec.Cluster, g.Spec.Role, fmt.Sprintf("%d/%d", len(g.Status.Nodes), g.Spec.NodeCount),
		orNone(g.Status.Status), age(g.CreationTimestamp, now),
	}
}
