package deployment

import (
	v1 "k8s.io/api/core/v1"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// computeHash returns the pod-template-hash of template (see
// controllerutil.ComputeHash).
func computeHash(template *v1.PodTemplateSpec, collisionCount *int32) string {
	return controllerutil.ComputeHash(template, collisionCount)
}
