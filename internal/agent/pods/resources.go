package pods

import (
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cgroup v1 CPU figures, as the kubelet uses them.
const (
	minShares      = 2
	maxShares      = 262144
	sharesPerCPU   = 1024
	milliPerCPU    = 1000
	quotaPeriod    = 100000 // µs
	minQuotaPeriod = 1000   // µs

	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
)

// qosClass follows Kubernetes' GetPodQOS: Guaranteed when every container
// limits CPU and memory and requests equal limits, BestEffort when nothing
// requests or limits them, Burstable otherwise.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	requests, limits := v1.ResourceList{}, v1.ResourceList{}
	guaranteed := true
	add := func(dst v1.ResourceList, name v1.ResourceName, q resource.Quantity) {
		if cur, ok := dst[name]; ok {
			cur.Add(q)
			dst[name] = cur
		} else {
			dst[name] = q.DeepCopy()
		}
	}
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			if q, ok := c.Resources.Requests[name]; ok && q.Sign() > 0 {
				add(requests, name, q)
			}
			if q, ok := c.Resources.Limits[name]; ok && q.Sign() > 0 {
				add(limits, name, q)
			} else {
				guaranteed = false
			}
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return v1.PodQOSBestEffort
	}
	if guaranteed {
		for name, req := range requests {
			if lim := limits[name]; lim.Cmp(req) != 0 {
				guaranteed = false
			}
		}
	}
	if guaranteed && len(requests) == len(limits) {
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

// linuxResources maps a container's requests and limits to cgroup
// settings: CPU shares from the request, CFS quota from the limit, the
// memory limit, and the OOM score adjustment of the pod's QoS class.
func linuxResources(c *v1.Container, qos v1.PodQOSClass, memoryCapacity int64) *runtimeapi.LinuxContainerResources {
	r := &runtimeapi.LinuxContainerResources{}
	cpuReq := c.Resources.Requests.Cpu().MilliValue()
	cpuLim := c.Resources.Limits.Cpu().MilliValue()
	if cpuReq == 0 && cpuLim != 0 {
		cpuReq = cpuLim
	}
	r.CpuShares = milliCPUToShares(cpuReq)
	if cpuLim != 0 {
		r.CpuPeriod = quotaPeriod
		r.CpuQuota = milliCPUToQuota(cpuLim, quotaPeriod)
	}
	r.MemoryLimitInBytes = c.Resources.Limits.Memory().Value()
	r.OomScoreAdj = oomScoreAdj(c, qos, memoryCapacity)
	return r
}

func milliCPUToShares(milli int64) int64 {
	if milli == 0 {
		return minShares
	}
	shares := milli * sharesPerCPU / milliPerCPU
	return min(max(shares, minShares), maxShares)
}

func milliCPUToQuota(milli, period int64) int64 {
	return max(milli*period/milliPerCPU, minQuotaPeriod)
}

// oomScoreAdj follows the kubelet's policy: Guaranteed pods are killed
// last, BestEffort first, Burstable in between by their share of the
// node's memory.
func oomScoreAdj(c *v1.Container, qos v1.PodQOSClass, memoryCapacity int64) int64 {
	switch qos {
	case v1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case v1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	var adj int64 = besteffortOOMScoreAdj
	if memoryCapacity > 0 {
		adj = 1000 - (1000*c.Resources.Requests.Memory().Value())/memoryCapacity
	}
	// Burstable stays strictly between the other two classes.
	if adj < 1000+guaranteedOOMScoreAdj {
		return 1000 + guaranteedOOMScoreAdj
	}
	if adj == besteffortOOMScoreAdj {
		return adj - 1
	}
	return adj
}
