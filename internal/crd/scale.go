package crd

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ScaleInfo is a version's /scale subresource: where its objects keep the
// replica counts and the label selector (JSON paths such as
// .spec.replicas).
type ScaleInfo struct {
	SpecReplicasPath   string
	StatusReplicasPath string
	// LabelSelectorPath is empty when the definition gives none.
	LabelSelectorPath string
}

// Get reads the scale of obj as upstream's scaleFromCustomResource does:
// a missing count reads as 0, and found tells whether the spec count is
// set (upstream answers a read of /scale without it with an internal
// error). A value of the wrong type is an error.
func (s *ScaleInfo) Get(obj *unstructured.Unstructured) (specReplicas, statusReplicas int32, selector string, found bool, err error) {
	spec, found, err := unstructured.NestedInt64(obj.Object, splitPath(s.SpecReplicasPath)...)
	if err != nil {
		return 0, 0, "", false, err
	}
	status, _, err := unstructured.NestedInt64(obj.Object, splitPath(s.StatusReplicasPath)...)
	if err != nil {
		return 0, 0, "", false, err
	}
	if s.LabelSelectorPath != "" {
		if selector, _, err = unstructured.NestedString(obj.Object, splitPath(s.LabelSelectorPath)...); err != nil {
			return 0, 0, "", false, err
		}
	}
	return int32(spec), int32(status), selector, found, nil
}

// SetReplicas sets the spec count of obj, creating the maps on its path.
func (s *ScaleInfo) SetReplicas(obj *unstructured.Unstructured, replicas int32) error {
	if err := unstructured.SetNestedField(obj.Object, int64(replicas), splitPath(s.SpecReplicasPath)...); err != nil {
		return fmt.Errorf("setting %s: %w", s.SpecReplicasPath, err)
	}
	return nil
}
