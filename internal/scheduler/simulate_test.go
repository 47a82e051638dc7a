package scheduler

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestSimulatorPlace(t *testing.T) {
	s := NewSimulator()
	s.AddNode(makeNode("a", "2", "4Gi", 110))
	s.AddNode(makeNode("b", "4", "8Gi", 110, withTaint("dedicated", "ml", corev1.TaintEffectNoSchedule)))
	s.AddNode(makeNode("c", "4", "8Gi", 110, withLabel("disk", "ssd")))

	if !s.AddPod(makePod("running", withContainer("cpu", "1500m")), "a") {
		t.Fatal("AddPod on a known node failed")
	}
	if s.AddPod(makePod("x"), "nope") {
		t.Error("AddPod on an unknown node succeeded")
	}
	if err := s.Fits(makePod("big", withContainer("cpu", "1")), "a"); err == nil || !strings.Contains(err.Error(), "Insufficient cpu") {
		t.Errorf("Fits on a full node: %v, want Insufficient cpu", err)
	}
	// The taint rules b out, a is full: c takes it.
	if got := s.Place(makePod("p1", withContainer("cpu", "1")), nil); got != "c" {
		t.Errorf("placed on %q, want c", got)
	}
	// A clone's placements leave the original as it was.
	c := s.Clone()
	for range 3 {
		c.Place(makePod("p", withContainer("cpu", "1")), nil)
	}
	if err := c.Fits(makePod("p", withContainer("cpu", "1")), "c"); err == nil {
		t.Error("clone: c should be full")
	}
	if err := s.Fits(makePod("p", withContainer("cpu", "3")), "c"); err != nil {
		t.Errorf("original changed by its clone: %v", err)
	}
	// skip rules nodes out; a toleration lets the pod onto b.
	tol := makePod("t", withContainer("cpu", "1"), withToleration("dedicated", corev1.TolerationOpEqual, "ml", corev1.TaintEffectNoSchedule))
	if got := s.Place(tol, func(n string) bool { return n != "b" }); got != "b" {
		t.Errorf("tolerating pod placed on %q, want b", got)
	}
	if got := s.Place(makePod("sel", withNodeSelector("disk", "hdd")), nil); got != "" {
		t.Errorf("pod selecting no node placed on %q", got)
	}
	s.RemoveNode("c")
	if got := s.Nodes(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("nodes %v after removing c", got)
	}
}

func TestSimulatorPodRequests(t *testing.T) {
	p := makePod("p", withContainer("cpu", "500m", "memory", "1Gi"), withContainer("cpu", "250m"), withInitContainer(false, "cpu", "2"))
	r := PodRequests(p)
	if cpu := r[corev1.ResourceCPU]; cpu.MilliValue() != 2000 {
		t.Errorf("cpu %s, want 2 (the init container's peak)", cpu.String())
	}
	if mem := r[corev1.ResourceMemory]; mem.Value() != 1<<30 {
		t.Errorf("memory %s, want 1Gi", mem.String())
	}
}
