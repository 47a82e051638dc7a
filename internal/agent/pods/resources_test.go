package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func rl(cpu, mem string) v1.ResourceList {
	l := v1.ResourceList{}
	if cpu != "" {
		l[v1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		l[v1.ResourceMemory] = resource.MustParse(mem)
	}
	return l
}

func TestQOSClass(t *testing.T) {
	tests := []struct {
		name       string
		containers []v1.ResourceRequirements
		want       v1.PodQOSClass
	}{
		{"nothing set", []v1.ResourceRequirements{{}}, v1.PodQOSBestEffort},
		{"limits equal requests", []v1.ResourceRequirements{{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}}, v1.PodQOSGuaranteed},
		{"every container guaranteed", []v1.ResourceRequirements{{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}, {Requests: rl("100m", "1Mi"), Limits: rl("100m", "1Mi")}}, v1.PodQOSGuaranteed},
		{"one container without limits", []v1.ResourceRequirements{{Requests: rl("1", "1Gi"), Limits: rl("1", "1Gi")}, {}}, v1.PodQOSBurstable},
		{"requests below limits", []v1.ResourceRequirements{{Requests: rl("500m", "1Gi"), Limits: rl("1", "1Gi")}}, v1.PodQOSBurstable},
		{"only a memory limit", []v1.ResourceRequirements{{Limits: rl("", "1Gi")}}, v1.PodQOSBurstable},
		{"only requests", []v1.ResourceRequirements{{Requests: rl("100m", "")}}, v1.PodQOSBurstable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("q")
			pod.Spec.Containers = nil
			for i, r := range tt.containers {
				pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: string(rune('a' + i)), Resources: r})
			}
			if got := qosClass(pod); got != tt.want {
				t.Errorf("qosClass = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestLinuxResources(t *testing.T) {
	const capacity = 1 << 30
	tests := []struct {
		name string
		res  v1.ResourceRequirements
		qos  v1.PodQOSClass
		want *runtimeapi.LinuxContainerResources
	}{
		{"best effort", v1.ResourceRequirements{}, v1.PodQOSBestEffort, &runtimeapi.LinuxContainerResources{CpuShares: 2, OomScoreAdj: 1000}},
		{
			"guaranteed",
			v1.ResourceRequirements{Requests: rl("2", "256Mi"), Limits: rl("2", "256Mi")},
			v1.PodQOSGuaranteed,
			&runtimeapi.LinuxContainerResources{CpuShares: 2048, CpuPeriod: 100000, CpuQuota: 200000, MemoryLimitInBytes: 256 << 20, OomScoreAdj: -997},
		},
		{
			"burstable: shares from requests, score from the share of memory",
			v1.ResourceRequirements{Requests: rl("100m", "512Mi")},
			v1.PodQOSBurstable,
			&runtimeapi.LinuxContainerResources{CpuShares: 102, OomScoreAdj: 500},
		},
		{
			"tiny limits are raised to the minimum quota, the score stays below best effort",
			v1.ResourceRequirements{Limits: rl("1m", "")},
			v1.PodQOSBurstable,
			&runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, CpuQuota: 1000, OomScoreAdj: 999},
		},
		{
			"a request of all memory stays above guaranteed",
			v1.ResourceRequirements{Requests: rl("", "1Gi")},
			v1.PodQOSBurstable,
			&runtimeapi.LinuxContainerResources{CpuShares: 2, OomScoreAdj: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &v1.Container{Resources: tt.res}
			if diff := cmp.Diff(tt.want, linuxResources(c, tt.qos, capacity), protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
