package resources

import (
	"fmt"
	"sync"
	"sync/atomic"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authenticationv1beta1 "k8s.io/api/authentication/v1beta1"
	authorizationv1 "k8s.io/api/authorization/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
)

// Registry is the set of resources a server serves, with the scheme that
// knows the built-in types. The built-in resources are fixed; resources
// defined at run time (custom resources) are added and removed with Add and
// Remove. Reads never lock: they see one immutable view.
type Registry struct {
	Scheme *runtime.Scheme
	view   atomic.Pointer[view]
	// mu serialises Add and Remove.
	mu sync.Mutex
}

// NewScheme returns a scheme with every API group Wharf serves.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, coordinationv1.AddToScheme,
		autoscalingv1.AddToScheme, policyv1.AddToScheme, discoveryv1.AddToScheme, networkingv1.AddToScheme,
		batchv1.AddToScheme, autoscalingv2.AddToScheme, storagev1.AddToScheme, rbacv1.AddToScheme,
		admissionregistrationv1.AddToScheme, authenticationv1.AddToScheme, authorizationv1.AddToScheme,
		eventsv1.AddToScheme, authenticationv1beta1.AddToScheme,
		apiextensionsv1.AddToScheme, certificatesv1.AddToScheme,
		wharfv1.AddToScheme, metricsv1beta1.AddToScheme,
	} {
		utilruntime.Must(add(s))
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	utilruntime.Must(metav1.AddMetaToScheme(s))
	return s
}

// NewRegistry builds a registry of the given resources (Builtin() when none given).
func NewRegistry(scheme *runtime.Scheme, rs ...*Resource) (*Registry, error) {
	if len(rs) == 0 {
		rs = Builtin()
	}
	for _, r := range rs {
		if !scheme.Recognizes(r.GroupVersionKind()) {
			return nil, fmt.Errorf("resource %s: kind %s not in scheme", r.GVR, r.GroupVersionKind())
		}
	}
	v, err := newView(rs, 0, len(rs))
	if err != nil {
		return nil, err
	}
	reg := &Registry{Scheme: scheme}
	reg.view.Store(v)
	return reg, nil
}

// Builtin returns the core resources of a cluster. New kinds go at the end
// (or beside their group's): discovery lists groups in this order, and a
// group's versions too, the first its preferred one (autoscaling/v2 before
// v1, as upstream).
func Builtin() []*Resource {
	return append([]*Resource{
		Namespaces(), Nodes(), Pods(), Services(), Endpoints(), ConfigMaps(), Secrets(),
		Events(), ServiceAccounts(), Deployments(), ReplicaSets(), StatefulSets(), ControllerRevisions(), DaemonSets(), EventsV1(), Leases(), EndpointSlices(),
		Ingresses(), IngressClasses(), NetworkPolicies(),
		Jobs(), CronJobs(), HorizontalPodAutoscalers(), HorizontalPodAutoscalersV1(), PodDisruptionBudgets(),
		PersistentVolumes(), PersistentVolumeClaims(),
		StorageClasses(), CSIDrivers(), VolumeAttachments(),
		Roles(), ClusterRoles(), RoleBindings(), ClusterRoleBindings(),
		ValidatingWebhookConfigurations(), MutatingWebhookConfigurations(),
		ValidatingAdmissionPolicies(), ValidatingAdmissionPolicyBindings(),
		CustomResourceDefinitions(), CertificateSigningRequests(),
	}, append(Reviews(), ResourceMetrics()...)...)
}

// Service returns the resources of the cluster service: a cluster's, and
// the cluster templates, clusters and node groups it manages.
func Service() []*Resource {
	return append(Builtin(), ClusterTemplates(), Clusters(), NodeGroups(), ClusterBackups())
}
