package pods

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func TestStorageViolation(t *testing.T) {
	q := resource.MustParse
	pod := func(sizeLimit string, limits ...string) *v1.Pod {
		p := &v1.Pod{}
		if sizeLimit != "" {
			p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: ptr.To(q(sizeLimit))}}}}
		}
		for i, l := range limits {
			c := v1.Container{Name: []string{"a", "b"}[i]}
			if l != "" {
				c.Resources.Limits = v1.ResourceList{v1.ResourceEphemeralStorage: q(l)}
			}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		return p
	}
	for _, tc := range []struct {
		name       string
		pod        *v1.Pod
		emptyDir   int64
		containers map[string]int64
		want       string
	}{
		{"within every limit", pod("1Mi", "2Mi"), 1 << 19, map[string]int64{"a": 1 << 19}, ""},
		{"emptyDir beyond its size limit", pod("1Mi", "10Mi"), 2 << 20, nil, `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". `},
		{"pod total beyond the sum", pod("", "1Mi", "1Mi"), 0, map[string]int64{"a": 1 << 20, "b": 1<<20 + 1}, "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. "},
		{"emptyDir counts toward the pod", pod("10Mi", "1Mi"), 1 << 20, map[string]int64{"a": 1}, "Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. "},
		{"one container beyond its own", pod("", "1Mi", "3Mi"), 0, map[string]int64{"a": 2 << 20}, `Container a exceeded its local ephemeral storage limit "1Mi". `},
		{"no limits", pod("", "", ""), 0, map[string]int64{"a": 1 << 40}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			use := storageUse{emptyDirs: map[string]int64{}, containers: tc.containers}
			if len(tc.pod.Spec.Volumes) > 0 {
				use.emptyDirs["scratch"] = tc.emptyDir
			}
			got, over := storageViolation(tc.pod, use)
			if got != tc.want || over != (tc.want != "") {
				t.Errorf("storageViolation = %q %v, want %q", got, over, tc.want)
			}
		})
	}
}

// TestEphemeralStorageEviction fills a pod's emptyDir past its size limit:
// the pod is stopped and fails as Evicted with DisruptionTarget.
func TestEphemeralStorageEviction(t *testing.T) {
	h := newHarness(t)
	h.start()
	pod := testPod("hog", func(p *v1.Pod) {
		p.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("64Ki"))}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}
	})
	h.createPod(pod)
	h.waitRunning(pod.UID, "app", 0)
	ctx := context.Background()
	h.m.checkEphemeralStorage(ctx)
	if _, marked := h.m.evictions.take(pod.UID); marked {
		t.Fatal("an empty volume marked for eviction")
	}
	dir := h.m.volumes.Dir(pod.UID, "scratch")
	if err := os.WriteFile(filepath.Join(dir, "fill"), []byte(strings.Repeat("x", 128<<10)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.m.checkEphemeralStorage(ctx)
	const msg = `Usage of EmptyDir volume "scratch" exceeds the limit "64Ki". `
	p := h.waitPod("hog", "evicted", func(p *v1.Pod) bool { return p.Status.Phase == v1.PodFailed })
	if p.Status.Reason != reasonEvicted || p.Status.Message != msg {
		t.Errorf("reason %q message %q, want Evicted %q", p.Status.Reason, p.Status.Message, msg)
	}
	var cond *v1.PodCondition
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == v1.DisruptionTarget {
			cond = &p.Status.Conditions[i]
		}
	}
	if cond == nil || cond.Status != v1.ConditionTrue || cond.Reason != reasonTerminationByKubelet {
		t.Errorf("DisruptionTarget condition %+v, want True TerminationByKubelet", cond)
	}
	if !h.events.has(reasonEvicted + ": " + msg) {
		t.Errorf("events %v, want Evicted", h.events.list)
	}
	if st := p.Status.ContainerStatuses; len(st) != 1 || st[0].State.Terminated == nil {
		t.Errorf("container statuses %+v, want the container terminated", st)
	}
}
