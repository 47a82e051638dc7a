//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/testserver"
)

const volumePod = `apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: registry.wharf.local/wharf/busybox:v1
    command: [sleep, "3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: CLAIM}
`

func podWithClaim(name, claim string) string {
	return strings.NewReplacer("NAME", name, "CLAIM", claim).Replace(volumePod)
}

// TestVolumes runs the wharf.dev/local provisioner on a real node: a claim
// on the default class gets a volume of its size when a pod uses it; the
// pod writes, and a write past the capacity fails with ENOSPC inside the
// volume; a new pod sees the data; deleting the claim deletes the volume.
// A claim larger than the node's disk gets a ProvisioningFailed event.
func TestVolumes(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")
	c.Eventually(`local \(default\)\s+wharf.dev/local\s+Delete\s+WaitForFirstConsumer\s+true`, "get", "storageclass")

	start := time.Now()
	c.RunIn(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
`, "apply", "-f", "-")
	c.RunIn(podWithClaim("writer", "data"), "apply", "-f", "-")
	c.Run("wait", "--for=condition=Ready", "pod/writer", "--timeout=120s")
	t.Logf("claim created → bound and mounted in a running pod: %v", time.Since(start).Round(time.Millisecond))

	uid := c.Run("get", "pvc", "data", "-o", "jsonpath={.metadata.uid}")
	pvName := "pvc-" + uid
	// kubectl's columns: the claim Bound to its PV, of 64Mi, RWO, class local.
	if out := c.Run("get", "pvc", "data"); !regexp.MustCompile(`data\s+Bound\s+` + pvName + `\s+64Mi\s+RWO\s+local`).MatchString(out) {
		t.Errorf("kubectl get pvc:\n%s", out)
	}
	if out := c.Run("get", "pv", pvName); !regexp.MustCompile(pvName + `\s+64Mi\s+RWO\s+Delete\s+Bound\s+default/data\s+local`).MatchString(out) {
		t.Errorf("kubectl get pv:\n%s", out)
	}
	testserver.Contains(t, c.Run("get", "pv", pvName, "-o", `jsonpath={.metadata.annotations.pv\.kubernetes\.io/provisioned-by} {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}`),
		"wharf.dev/local e2e")
	path := c.Run("get", "pv", pvName, "-o", "jsonpath={.spec.local.path}")
	if !strings.HasPrefix(path, c.stateDir) {
		t.Errorf("volume at %s, outside the cluster's state dir %s", path, c.stateDir)
	}
	c.Eventually(`ProvisioningSucceeded\s+persistentvolumeclaim/data\s+Successfully provisioned volume `+pvName, "get", "events", "--field-selector", "involvedObject.name=data")

	c.Run("exec", "writer", "--", "sh", "-c", "echo kept > /data/hello")
	// 100 MiB into 64 MiB: the volume is full, not the host.
	out, err := c.Cmd("", "exec", "writer", "--", "dd", "if=/dev/zero", "of=/data/fill", "bs=1M", "count=100").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left on device") {
		t.Errorf("dd past the capacity: %v\n%s", err, out)
	}
	// The pod's /data is the volume's own filesystem, on a loop device.
	if df := c.Run("exec", "writer", "--", "df", "-k", "/data"); !strings.Contains(df, "/dev/loop") {
		t.Errorf("df in the pod, want the volume's loop device:\n%s", df)
	}

	c.Run("delete", "pod", "writer", "--wait", "--timeout=60s")
	// The class allows expansion: the claim grows, with no pod using it
	// (this VM's root may not grow ext4 online; see docs/storage-local.md).
	c.Run("patch", "pvc", "data", "-p", `{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}`)
	c.Eventually(`^128Mi 128Mi$`, "get", "pvc", "data", "-o", "jsonpath={.status.capacity.storage} {.spec.resources.requests.storage}")
	if got := c.Run("get", "pv", pvName, "-o", "jsonpath={.spec.capacity.storage}"); got != "128Mi" {
		t.Errorf("PV capacity after the expansion: %s, want 128Mi", got)
	}
	c.RunIn(podWithClaim("reader", "data"), "apply", "-f", "-")
	c.Run("wait", "--for=condition=Ready", "pod/reader", "--timeout=120s")
	if got := c.Run("exec", "reader", "--", "cat", "/data/hello"); got != "kept\n" {
		t.Errorf("the next pod reads %q, want kept", got)
	}
	// ~64 MiB used of a filesystem of ~128 MiB now: room for 40 MiB more.
	if out, err := c.Cmd("", "exec", "reader", "--", "dd", "if=/dev/zero", "of=/data/more", "bs=1M", "count=40").CombinedOutput(); err != nil {
		t.Errorf("writing into the grown volume: %v\n%s", err, out)
	}

	// The claim goes (its pod first: pvc-protection holds it until then),
	// then the Released PV and the volume under it.
	c.Run("delete", "pod", "reader", "--wait", "--timeout=60s")
	c.Run("delete", "pvc", "data", "--wait", "--timeout=60s")
	testserver.WaitFor(t, "the PV's deletion", 60*time.Second, func() (bool, error) {
		_, err := c.client.CoreV1().PersistentVolumes().Get(testContext(t), pvName, metav1.GetOptions{})
		return err != nil && strings.Contains(err.Error(), "not found"), nil
	})
	if _, err := os.Stat(strings.TrimSuffix(path, "/mount")); !os.IsNotExist(err) {
		t.Errorf("volume directory %s left: %v", path, err)
	}

	// Figures for docs/benchmarks.md, printed, not asserted.
	t.Run("claim to running pod", func(t *testing.T) {
		ctx := testContext(t)
		var took []time.Duration
		for i := range 5 {
			name := fmt.Sprintf("bench-%d", i)
			claim := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("256Mi")}},
				},
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(0)),
					Containers: []corev1.Container{{Name: "app", Image: "registry.wharf.local/wharf/busybox:v1", Command: []string{"sleep", "3600"},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}}},
				},
			}
			start := time.Now()
			if _, err := c.client.CoreV1().PersistentVolumeClaims("default").Create(ctx, claim, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			// When each step of the chain was first seen, polling.
			stages := map[string]time.Duration{}
			seen := func(stage string, ok bool) {
				if _, done := stages[stage]; ok && !done {
					stages[stage] = time.Since(start)
				}
			}
			waitFast(t, "pod "+name+" running", func() (bool, error) {
				if cl, err := c.client.CoreV1().PersistentVolumeClaims("default").Get(ctx, name, metav1.GetOptions{}); err == nil {
					seen("node selected", cl.Annotations["volume.kubernetes.io/selected-node"] != "")
					seen("claim bound", cl.Status.Phase == corev1.ClaimBound)
				}
				p, err := c.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					return false, nil
				}
				seen("pod scheduled", p.Spec.NodeName != "")
				for _, cond := range p.Status.Conditions {
					if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
						return true, nil
					}
				}
				return false, nil
			})
			t.Logf("%s: node selected %v, pod scheduled %v, claim bound %v, pod ready %v", name,
				stages["node selected"].Round(time.Millisecond), stages["pod scheduled"].Round(time.Millisecond),
				stages["claim bound"].Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		t.Logf("claim + pod created → pod Ready with the volume mounted, 5 runs: min %v, median %v, max %v",
			took[0].Round(time.Millisecond), took[2].Round(time.Millisecond), took[4].Round(time.Millisecond))
		for i := range 5 {
			name := fmt.Sprintf("bench-%d", i)
			c.Run("delete", "pod", name, "--wait=false")
			c.Run("delete", "pvc", name, "--wait=false")
		}
	})

	t.Run("larger than the disk", func(t *testing.T) {
		c.RunIn(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: huge}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Pi}}
`, "apply", "-f", "-")
		c.RunIn(podWithClaim("huge", "huge"), "apply", "-f", "-")
		c.Eventually(`ProvisioningFailed\s+persistentvolumeclaim/huge\s+.*not enough free space on the node`, "get", "events", "--field-selector", "involvedObject.name=huge")
		if out := c.Run("get", "pvc", "huge"); !strings.Contains(out, "Pending") {
			t.Errorf("kubectl get pvc:\n%s", out)
		}
		if pvs := c.Run("get", "pv", "-o", "name"); strings.Contains(pvs, "pvc-") {
			t.Errorf("PVs after a failed provisioning: %s", pvs)
		}
		c.Run("delete", "pod", "huge", "--wait=false")
		c.Run("delete", "pvc", "huge", "--wait=false")
	})
}

// waitFast polls cond every 10 ms (testserver.WaitFor's 100 ms would be
// most of the figure measured), for up to two minutes.
func waitFast(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if ok, err := cond(); err != nil {
			t.Fatalf("%s: %v", what, err)
		} else if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
