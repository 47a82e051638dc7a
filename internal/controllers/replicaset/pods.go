package replicaset

import (
	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// podFromTemplate builds the pod rs creates: the template's labels,
// annotations, finalizers and spec, a generated name and rs as controller.
func podFromTemplate(rs *appsv1.ReplicaSet) *v1.Pod {
	t := rs.Spec.Template.DeepCopy()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       rs.Namespace,
			GenerateName:    controllerutil.PodNamePrefix(rs.Name),
			Labels:          t.Labels,
			Annotations:     t.Annotations,
			Finalizers:      t.Finalizers,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, controllerKind)},
		},
		Spec: t.Spec,
	}
	return pod
}
