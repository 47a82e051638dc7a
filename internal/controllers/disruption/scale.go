package disruption

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// controllerAndScale is a pod's controller and the replicas it wants.
type controllerAndScale struct {
	uid   types.UID
	scale int32
}

// scaleFunc finds the controller ref names through its scale subresource;
// nil if there is no such controller (or it has no scale).
type scaleFunc func(ctx context.Context, namespace string, ref *metav1.OwnerReference) (*controllerAndScale, error)

// controllerScale finds the controller a pod's ref names and its scale. A
// ReplicaSet of a Deployment counts as its Deployment, as Kubernetes does:
// during a rollout the Deployment's replicas are the pods expected.
func (c *Controller) controllerScale(ctx context.Context, namespace string, ref *metav1.OwnerReference) (*controllerAndScale, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("controller of pod: %w", err)
	}
	if gv.Group != appsv1.GroupName || ref.Kind != "ReplicaSet" {
		return c.scaleOfRef(ctx, namespace, ref)
	}
	rs, ok := controllerutil.ResolveControllerRef(ref, "ReplicaSet", c.rsLister.ReplicaSets(namespace).Get)
	if !ok {
		return nil, nil
	}
	depRef := metav1.GetControllerOf(rs)
	if depRef == nil || depRef.Kind != "Deployment" {
		return &controllerAndScale{uid: rs.UID, scale: replicas(rs.Spec.Replicas)}, nil
	}
	dep, ok := controllerutil.ResolveControllerRef(depRef, "Deployment", c.depLister.Deployments(namespace).Get)
	if !ok {
		return nil, nil
	}
	return &controllerAndScale{uid: dep.UID, scale: replicas(dep.Spec.Replicas)}, nil
}

// replicas reads a spec.replicas defaulted to 1.
func replicas(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}

// discoveryScale reads any served kind's scale subresource (StatefulSets,
// custom resources with a scale subresource), found through discovery.
func discoveryScale(client kubernetes.Interface) scaleFunc {
	return func(ctx context.Context, namespace string, ref *metav1.OwnerReference) (*controllerAndScale, error) {
		rc := client.Discovery().RESTClient()
		if rc == nil {
			return nil, nil
		}
		list, err := client.Discovery().ServerResourcesForGroupVersion(ref.APIVersion)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", ref.APIVersion, err)
		}
		resource := ""
		for _, r := range list.APIResources {
			if r.Kind == ref.Kind && !strings.Contains(r.Name, "/") {
				resource = r.Name
			}
		}
		hasScale := false
		for _, r := range list.APIResources {
			hasScale = hasScale || (resource != "" && r.Name == resource+"/scale")
		}
		if !hasScale {
			return nil, nil
		}
		prefix := "/apis/" + ref.APIVersion
		if !strings.Contains(ref.APIVersion, "/") {
			prefix = "/api/" + ref.APIVersion
		}
		raw, err := rc.Get().AbsPath(path.Join(prefix, "namespaces", namespace, resource, ref.Name, "scale")).Do(ctx).Raw()
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("scale of %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
		}
		var sc autoscalingv1.Scale
		if err := json.Unmarshal(raw, &sc); err != nil {
			return nil, fmt.Errorf("scale of %s %s/%s: %w", ref.Kind, namespace, ref.Name, err)
		}
		if sc.UID != ref.UID {
			return nil, nil // another object under the same name
		}
		return &controllerAndScale{uid: sc.UID, scale: sc.Spec.Replicas}, nil
	}
}
