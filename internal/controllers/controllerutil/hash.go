package controllerutil

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/dump"
)

// ComputeHash returns the hash of a pod template that Deployments
// (pod-template-hash) and DaemonSets (controller-revision-hash) label their
// objects with, exactly as Kubernetes' controller.ComputeHash: FNV-32a over
// the spew dump of the template (hashutil.DeepHashObject, i.e. dump.ForHash
// of the value, not the pointer), then the collision count as 8
// little-endian bytes when set, printed in decimal and encoded with
// rand.SafeEncodeString.
//
// The dump covers every field of the k8s.io/api struct, so a new field in a
// later k8s.io/api changes every hash; that is why existing objects are
// matched by their template, never by hash.
func ComputeHash(template *v1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	_, _ = io.WriteString(h, dump.ForHash(*template))
	if collisionCount != nil {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint32(b, uint32(*collisionCount))
		_, _ = h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}
