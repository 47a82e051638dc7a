package resources

import (
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Nodes is core/v1 nodes. An agent registers its node with a status, so a
// create keeps it.
func Nodes() *Resource {
	return &Resource{
		GVR:                corev1.SchemeGroupVersion.WithResource("nodes"),
		Kind:               "Node",
		SingularName:       "node",
		ShortNames:         []string{"no"},
		New:                func() runtime.Object { return &corev1.Node{} },
		NewList:            func() runtime.Object { return &corev1.NodeList{} },
		HasStatus:          true,
		KeepStatusOnCreate: true,
		Default:            typed(defaultNode),
		Validate:           typedValidate(validateNode),
		ValidateUpdate:     typedValidateUpdate(validateNodeUpdate),
		ValidateStatus: typedValidateUpdate(func(n, _ *corev1.Node) field.ErrorList {
			return validateNodeStatus(&n.Status)
		}),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Status", Type: "string", Description: "The status of the node"},
			{Name: "Roles", Type: "string", Description: "The roles of the node"},
			ageColumn,
			{Name: "Version", Type: "string", Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kubeletVersion"]},
			{Name: "Internal-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
			{Name: "External-IP", Type: "string", Priority: 1, Description: corev1.NodeStatus{}.SwaggerDoc()["addresses"]},
			{Name: "OS-Image", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["osImage"]},
			{Name: "Kernel-Version", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["kernelVersion"]},
			{Name: "Container-Runtime", Type: "string", Priority: 1, Description: corev1.NodeSystemInfo{}.SwaggerDoc()["containerRuntimeVersion"]},
		},
		Row: typedRowNow(nodeRow),
		Fields: typedFields(func(n *corev1.Node) fields.Set {
			return fields.Set{"spec.unschedulable": strconv.FormatBool(n.Spec.Unschedulable)}
		}),
	}
}

func defaultNode(n *corev1.Node) {
	// podCIDR and podCIDRs[0] are one value; writers may set either.
	if n.Spec.PodCIDR != "" && len(n.Spec.PodCIDRs) == 0 {
		n.Spec.PodCIDRs = []string{n.Spec.PodCIDR}
	}
	if n.Spec.PodCIDR == "" && len(n.Spec.PodCIDRs) > 0 {
		n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
	}
	roundResourceList(n.Status.Capacity)
	roundResourceList(n.Status.Allocatable)
	if n.Status.Allocatable == nil && n.Status.Capacity != nil {
		n.Status.Allocatable = n.Status.Capacity.DeepCopy()
	}
}

func validateNode(n *corev1.Node) field.ErrorList {
	errs := validateMeta(&n.ObjectMeta, false, nameIsDNSSubdomain)
	sp := field.NewPath("spec")
	errs = append(errs, validateTaints(n.Spec.Taints, sp.Child("taints"))...)
	cp := sp.Child("podCIDRs")
	for i, c := range n.Spec.PodCIDRs {
		errs = append(errs, validation.IsValidCIDR(cp.Index(i), c)...)
	}
	if len(n.Spec.PodCIDRs) > 0 && n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
		errs = append(errs, field.Invalid(sp.Child("podCIDR"), n.Spec.PodCIDR, "must match the first value of `podCIDRs`"))
	}
	if len(n.Spec.PodCIDRs) > 1 {
		v6 := func(c string) bool { ip, _, err := net.ParseCIDR(c); return err == nil && ip.To4() == nil }
		if len(n.Spec.PodCIDRs) > 2 || v6(n.Spec.PodCIDRs[0]) == v6(n.Spec.PodCIDRs[1]) {
			errs = append(errs, field.Invalid(cp, n.Spec.PodCIDRs, "may specify no more than one CIDR for each IP family"))
		}
	}
	return append(errs, validateNodeStatus(&n.Status)...)
}

func validateNodeStatus(s *corev1.NodeStatus) field.ErrorList {
	p := field.NewPath("status")
	errs := validateResourceList(s.Capacity, p.Child("capacity"))
	errs = append(errs, validateResourceList(s.Allocatable, p.Child("allocatable"))...)
	seen := map[corev1.NodeAddress]bool{}
	for i, a := range s.Addresses {
		if seen[a] {
			errs = append(errs, field.Duplicate(p.Child("addresses").Index(i), a))
		}
		seen[a] = true
	}
	return errs
}

// validateTaints: a taint is identified by its key and effect.
func validateTaints(ts []corev1.Taint, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, t := range ts {
		ip := p.Index(i)
		errs = append(errs, validateLabelName(t.Key, ip.Child("key"))...)
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
			errs = append(errs, field.Invalid(ip.Child("value"), t.Value, strings.Join(msgs, ";")))
		}
		errs = append(errs, validateTaintEffect(t.Effect, false, ip.Child("effect"))...)
		key := t.Key + "/" + string(t.Effect)
		if seen[key] {
			d := field.Duplicate(ip, t)
			d.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, d)
		}
		seen[key] = true
	}
	return errs
}

// validateNodeUpdate: a node's pod CIDRs and provider ID are set once.
func validateNodeUpdate(n, old *corev1.Node) field.ErrorList {
	var errs field.ErrorList
	sp := field.NewPath("spec")
	if len(old.Spec.PodCIDRs) > 0 && strings.Join(old.Spec.PodCIDRs, ",") != strings.Join(n.Spec.PodCIDRs, ",") {
		errs = append(errs, field.Forbidden(sp.Child("podCIDRs"), "node updates may not change podCIDR except from \"\" to valid"))
	}
	if old.Spec.ProviderID != "" && old.Spec.ProviderID != n.Spec.ProviderID {
		errs = append(errs, field.Forbidden(sp.Child("providerID"), "node updates may not change providerID except from \"\" to valid"))
	}
	return errs
}

func nodeRow(n *corev1.Node, now time.Time) []any {
	status := "Unknown"
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			status = "NotReady"
			if c.Status == corev1.ConditionTrue {
				status = "Ready"
			}
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	info := n.Status.NodeInfo
	unknown := func(s string) string {
		if s == "" {
			return "<unknown>"
		}
		return s
	}
	return []any{n.Name, status, orNone(strings.Join(nodeRoles(n), ",")), age(n.CreationTimestamp, now), info.KubeletVersion,
		nodeAddress(n, corev1.NodeInternalIP), nodeAddress(n, corev1.NodeExternalIP),
		unknown(info.OSImage), unknown(info.KernelVersion), unknown(info.ContainerRuntimeVersion)}
}

// nodeRoles reads node-role.kubernetes.io/<role> and kubernetes.io/role=<role> labels.
func nodeRoles(n *corev1.Node) []string {
	set := map[string]bool{}
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if r := strings.TrimPrefix(k, "node-role.kubernetes.io/"); r != "" {
				set[r] = true
			}
		case k == "kubernetes.io/role" && v != "":
			set[v] = true
		}
	}
	roles := make([]string, 0, len(set))
	for r := range set {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

func nodeAddress(n *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}
