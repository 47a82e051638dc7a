//go:build integration

package integration

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/simnode"
	"wharf.dev/wharf/internal/testserver"
)

const storageManifest = `
apiVersion: v1
kind: PersistentVolume
metadata: {name: static-pv}
spec:
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: /tmp/wharf-static-pv}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: static-claim}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: nowhere}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: gold
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: later}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 3Gi}}
`

const storagePod = `
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  containers: [{name: c, image: registry.wharf.local/wharf/testapp:v1}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: later}}]
`

// TestPersistentVolumes binds, provisions through the documented contract
// (docs/storage.md, the node's provisioner played by the test), releases
// and protects volumes on an in-process server with simulated nodes,
// checked with the real kubectl.
func TestPersistentVolumes(t *testing.T) {
	const minor = "33"
	testserver.Kubectl(t, minor)
	s := testserver.Start(t)
	ctx := testContext(t, 3*time.Minute)
	c := s.Client
	go simnode.Run(ctx, testserver.Logger(t), c, simnode.Config{Count: 2, Prefix: "disk"})
	k := testserver.NewKubectl(t, minor, s.AdminKubeconfig)

	k.RunIn(storageManifest, "apply", "-f", "-")
	// A static volume and a claim: both Bound, as kubectl shows them.
	out := k.Eventually(`persistentvolumeclaim/static-claim\s+Bound`, "get", "pv,pvc")
	for _, re := range []string{
		`(?m)^NAME\s+CAPACITY\s+ACCESS MODES\s+RECLAIM POLICY\s+STATUS\s+CLAIM\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+REASON\s+AGE$`,
		`(?m)^persistentvolume/static-pv\s+2Gi\s+RWO\s+Retain\s+Bound\s+default/static-claim\s+manual\s+<unset>\s+\d+s$`,
		`(?m)^NAME\s+STATUS\s+VOLUME\s+CAPACITY\s+ACCESS MODES\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+AGE$`,
		`(?m)^persistentvolumeclaim/static-claim\s+Bound\s+static-pv\s+2Gi\s+RWO\s+manual\s+<unset>\s+\d+s$`,
		`(?m)^persistentvolumeclaim/nowhere\s+Pending\s+gold\s+<unset>`,
		`(?m)^persistentvolumeclaim/later\s+Pending\s+local\s+<unset>`,
	} {
		if !matches(re, out) {
			t.Errorf("kubectl get pv,pvc does not match %s:\n%s", re, out)
		}
	}
	testserver.Contains(t, k.Run("get", "sc"), "local (default)", "wharf.dev/local", "Delete", "WaitForFirstConsumer", "true")

	// A class that does not exist: Pending, with upstream's event.
	k.Eventually(`ProvisioningFailed\s+persistentvolumeclaim/nowhere\s+storageclass.storage.k8s.io "gold" not found`,
		"get", "events", "--field-selector", "involvedObject.name=nowhere")
	// WaitForFirstConsumer: Pending until a pod uses it.
	k.Eventually(`WaitForFirstConsumer\s+persistentvolumeclaim/later\s+waiting for first consumer to be created before binding`,
		"get", "events", "--field-selector", "involvedObject.name=later")
	if a := claim(t, ctx, s, "later").Annotations; a["volume.kubernetes.io/selected-node"] != "" || a["volume.kubernetes.io/storage-provisioner"] != "" {
		t.Errorf("a claim no pod uses was handed on: %v", a)
	}
	k.RunIn(storagePod, "apply", "-f", "-")
	var node string
	testserver.WaitFor(t, "the pod scheduled and its claim handed to the provisioner", 30*time.Second, func() (bool, error) {
		pod, err := c.CoreV1().Pods("default").Get(ctx, "user", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		a := claim(t, ctx, s, "later").Annotations
		node = a["volume.kubernetes.io/selected-node"]
		return pod.Spec.NodeName != "" && node == pod.Spec.NodeName && a["volume.kubernetes.io/storage-provisioner"] == "wharf.dev/local",
			fmt.Errorf("pod on %q, claim annotations %v", pod.Spec.NodeName, a)
	})
	k.Eventually(`ExternalProvisioning\s+persistentvolumeclaim/later\s+Waiting for a volume to be created either by the external provisioner 'wharf.dev/local'`,
		"get", "events", "--field-selector", "involvedObject.name=later")
	// The node's provisioner, as docs/storage.md says it acts.
	later := claim(t, ctx, s, "later")
	provisioned := provisionLocal(t, ctx, s, later, node)
	k.Eventually(`(?m)^later\s+Bound\s+`+provisioned+`\s+3Gi\s+RWO\s+local\s`, "get", "pvc")
	k.Eventually(`(?m)^`+provisioned+`\s+3Gi\s+RWO\s+Delete\s+Bound\s+default/later\s+local\s`, "get", "pv")

	// Released, Retain: the volume stays with its claimRef.
	k.Run("delete", "pvc", "static-claim")
	k.Eventually(`(?m)^static-pv\s+2Gi\s+RWO\s+Retain\s+Released\s+default/static-claim\s+manual\s`, "get", "pv")

	// pvc-protection: the claim a pod uses waits for the pod.
	k.Run("delete", "pvc", "later", "--wait=false")
	k.Eventually(`(?m)^later\s+Terminating\s`, "get", "pvc")
	time.Sleep(time.Second)
	if got := claim(t, ctx, s, "later"); got.DeletionTimestamp == nil {
		t.Fatalf("claim in use not kept: %+v", got.ObjectMeta)
	}
	k.Run("delete", "pod", "user", "--grace-period=0", "--force")
	testserver.WaitFor(t, "the claim gone with its pod", 30*time.Second, func() (bool, error) {
		_, err := c.CoreV1().PersistentVolumeClaims("default").Get(ctx, "later", metav1.GetOptions{})
		return apierrors.IsNotFound(err), err
	})
	// Delete reclaim: Released, then the provisioner's to delete; pv-protection
	// lets the unbound volume go.
	k.Eventually(`(?m)^`+provisioned+`\s+3Gi\s+RWO\s+Delete\s+Released\s`, "get", "pv")
	k.Run("delete", "pv", provisioned)
}

func matches(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

func claim(t *testing.T, ctx context.Context, s *testserver.Server, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	c, err := s.Client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// provisionLocal creates the volume the wharf.dev/local provisioner on node
// would: named pvc-<claim uid>, pre-bound to the claim, pinned to the node.
func provisionLocal(t *testing.T, ctx context.Context, s *testserver.Server, claim *corev1.PersistentVolumeClaim, node string) string {
	t.Helper()
	name := "pvc-" + string(claim.UID)
	size := claim.Spec.Resources.Requests[corev1.ResourceStorage]
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "wharf.dev/local"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size.String())},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              *claim.Spec.StorageClassName,
			VolumeMode:                    claim.Spec.VolumeMode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/var/lib/wharf/volumes/" + name}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
	if _, err := s.Client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("provision %s: %v", name, err)
	}
	return name
}
