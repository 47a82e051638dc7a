// Package stats is the agent's resource usage summary, what the kubelet's
// /stats/summary is to metrics-server: CPU and memory of the node (its own
// cgroup subtree, so that nodes sharing a machine each count their own)
// and of each running container, from CRI stats. CPU is reported both as
// cumulative core-nanoseconds and as a rate in nanocores over a window of
// about Window; memory as the working set the kubelet defines (usage minus
// inactive file pages). The JSON field names are the kubelet's
// (stats/v1alpha1), so the figures read the same.
package stats

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Summary is a node's usage and that of its pods' running containers.
type Summary struct {
	Node NodeStats  `json:"node"`
	Pods []PodStats `json:"pods"`
}

// NodeStats is the node's own usage.
type NodeStats struct {
	NodeName string       `json:"nodeName"`
	CPU      *CPUStats    `json:"cpu,omitempty"`
	Memory   *MemoryStats `json:"memory,omitempty"`
}

// PodReference names a pod.
type PodReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	UID       string `json:"uid"`
}

// PodStats is a pod's usage: the sum of its containers'.
type PodStats struct {
	PodRef     PodReference     `json:"podRef"`
	Containers []ContainerStats `json:"containers"`
	CPU        *CPUStats        `json:"cpu,omitempty"`
	Memory     *MemoryStats     `json:"memory,omitempty"`
}

// ContainerStats is one running container's usage.
type ContainerStats struct {
	Name   string       `json:"name"`
	CPU    *CPUStats    `json:"cpu,omitempty"`
	Memory *MemoryStats `json:"memory,omitempty"`
}

// CPUStats: UsageNanoCores is the rate over the window ending at Time
// (nil until two samples are far enough apart); UsageCoreNanoSeconds is
// cumulative; Window is the span the rate was computed over.
type CPUStats struct {
	Time                 metav1.Time      `json:"time"`
	Window               *metav1.Duration `json:"window,omitempty"`
	UsageNanoCores       *uint64          `json:"usageNanoCores,omitempty"`
	UsageCoreNanoSeconds *uint64          `json:"usageCoreNanoSeconds,omitempty"`
}

// MemoryStats: WorkingSetBytes is usage minus inactive file pages, what
// the kubelet evicts by and metrics-server reports.
type MemoryStats struct {
	Time            metav1.Time `json:"time"`
	UsageBytes      *uint64     `json:"usageBytes,omitempty"`
	WorkingSetBytes *uint64     `json:"workingSetBytes,omitempty"`
}

// Sum adds containers' CPU rates and memory into pod totals: a pod's
// figure is only present when each container has it.
func (p *PodStats) Sum() {
	p.CPU, p.Memory = nil, nil
	if len(p.Containers) == 0 {
		return
	}
	var cores, cum, ws, usage uint64
	cpuOK, memOK := true, true
	cpu, mem := &CPUStats{}, &MemoryStats{}
	for _, c := range p.Containers {
		if c.CPU == nil || c.CPU.UsageNanoCores == nil {
			cpuOK = false
		} else {
			cores += *c.CPU.UsageNanoCores
			if c.CPU.UsageCoreNanoSeconds != nil {
				cum += *c.CPU.UsageCoreNanoSeconds
			}
			if c.CPU.Time.After(cpu.Time.Time) {
				cpu.Time, cpu.Window = c.CPU.Time, c.CPU.Window
			}
		}
		if c.Memory == nil || c.Memory.WorkingSetBytes == nil {
			memOK = false
		} else {
			ws += *c.Memory.WorkingSetBytes
			if c.Memory.UsageBytes != nil {
				usage += *c.Memory.UsageBytes
			}
			if c.Memory.Time.After(mem.Time.Time) {
				mem.Time = c.Memory.Time
			}
		}
	}
	if cpuOK {
		cpu.UsageNanoCores, cpu.UsageCoreNanoSeconds = &cores, &cum
		p.CPU = cpu
	}
	if memOK {
		mem.WorkingSetBytes, mem.UsageBytes = &ws, &usage
		p.Memory = mem
	}
}
