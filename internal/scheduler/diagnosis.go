package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// reason is a fixed filter failure. Failures are counted by code while
// filtering and turned into text only when no node fits, so feasible pods
// pay nothing for the diagnosis.
type reason uint8

const (
	reasonNotReady reason = iota
	reasonUnschedulable
	reasonNodeAffinity
	reasonHostPorts
	reasonTooManyPods
	reasonCPU
	reasonMemory
	reasonEphemeral
	reasonVolumeMissing
	reasonVolumeNodeConflict
	reasonVolumeBindConflict
	numReasons
)

// reasonText uses Kubernetes' wording so users and tools recognise it.
var reasonText = [numReasons]string{
	reasonNotReady:      "node(s) were not ready",
	reasonUnschedulable: "node(s) were unschedulable",
	reasonNodeAffinity:  "node(s) didn't match Pod's node affinity/selector",
	reasonHostPorts:     "node(s) didn't have free ports for the requested pod ports",
	reasonTooManyPods:   "Too many pods",
	reasonCPU:           "Insufficient cpu",
	reasonMemory:        "Insufficient memory",
	reasonEphemeral:     "Insufficient ephemeral-storage",
	// The VolumeBinding filter's conflicts.
	reasonVolumeMissing:      "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)",
	reasonVolumeNodeConflict: "node(s) had volume node affinity conflict",
	reasonVolumeBindConflict: "node(s) didn't find available persistent volumes to bind",
}

type taintKey struct{ key, value string }

// diagnosis counts why nodes were rejected during one scheduling cycle.
type diagnosis struct {
	counts  [numReasons]int
	taints  map[taintKey]int
	scalars map[corev1.ResourceName]int
}

func (d *diagnosis) reset() {
	d.counts = [numReasons]int{}
	clear(d.taints)
	clear(d.scalars)
}

func (d *diagnosis) add(r reason) { d.counts[r]++ }

func (d *diagnosis) addTaint(t *corev1.Taint) {
	if d.taints == nil {
		d.taints = make(map[taintKey]int)
	}
	d.taints[taintKey{t.Key, t.Value}]++
}

func (d *diagnosis) addScalar(name corev1.ResourceName) {
	if d.scalars == nil {
		d.scalars = make(map[corev1.ResourceName]int)
	}
	d.scalars[name]++
}

// reasons lists "count reason" strings sorted as Kubernetes sorts them
// (as plain strings).
func (d *diagnosis) reasons() []string {
	var out []string
	for r, c := range d.counts {
		if c > 0 {
			out = append(out, strconv.Itoa(c)+" "+reasonText[r])
		}
	}
	for t, c := range d.taints {
		out = append(out, fmt.Sprintf("%d node(s) had untolerated taint {%s: %s}", c, t.key, t.value))
	}
	for name, c := range d.scalars {
		out = append(out, fmt.Sprintf("%d Insufficient %s", c, name))
	}
	slices.Sort(out)
	return out
}

// fitError says why a pod fits no node; its message is what users read in
// the PodScheduled condition and the FailedScheduling event.
type fitError struct {
	numNodes int
	reasons  []string
	// preFilter says why no node was even tried (a missing claim, say).
	preFilter string
}

func (e *fitError) Error() string {
	if e.numNodes == 0 {
		return "no nodes available to schedule pods"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available:", e.numNodes)
	if e.preFilter != "" {
		b.WriteString(" ")
		b.WriteString(e.preFilter)
	} else if len(e.reasons) > 0 {
		b.WriteString(" ")
		b.WriteString(strings.Join(e.reasons, ", "))
	}
	b.WriteString(".")
	return b.String()
}
