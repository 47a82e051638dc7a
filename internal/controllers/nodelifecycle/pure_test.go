package nodelifecycle

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestEvictAt(t *testing.T) {
	unreachable := v1.Taint{Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoExecute}
	notReady := v1.Taint{Key: v1.TaintNodeNotReady, Effect: v1.TaintEffectNoExecute}
	custom := v1.Taint{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoExecute}
	since := map[string]time.Time{v1.TaintNodeUnreachable: t0, v1.TaintNodeNotReady: t0.Add(10 * time.Second), "dedicated": t0}
	tol := func(key string, op v1.TolerationOperator, secs *int64) v1.Toleration {
		return v1.Toleration{Key: key, Operator: op, Effect: v1.TaintEffectNoExecute, TolerationSeconds: secs}
	}
	tests := []struct {
		name   string
		tols   []v1.Toleration
		taints []v1.Taint
		want   time.Time
		wantOK bool
	}{
		{name: "no toleration: at once", taints: []v1.Taint{unreachable}, want: t0, wantOK: true},
		{name: "tolerated for 3 s", tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, ptr.To[int64](3))},
			taints: []v1.Taint{unreachable}, want: t0.Add(3 * time.Second), wantOK: true},
		{name: "tolerated forever", tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, nil)},
			taints: []v1.Taint{unreachable}, wantOK: false},
		{name: "shortest of several matching tolerations", tols: []v1.Toleration{
			tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, ptr.To[int64](300)),
			tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, ptr.To[int64](3)),
			tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, nil),
		}, taints: []v1.Taint{unreachable}, want: t0.Add(3 * time.Second), wantOK: true},
		{name: "negative seconds mean at once", tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, ptr.To[int64](-5))},
			taints: []v1.Taint{unreachable}, want: t0, wantOK: true},
		{name: "one untolerated taint of two", tols: []v1.Toleration{tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, nil)},
			taints: []v1.Taint{unreachable, notReady}, want: t0.Add(10 * time.Second), wantOK: true},
		{name: "earliest across taints", tols: []v1.Toleration{
			tol(v1.TaintNodeUnreachable, v1.TolerationOpExists, ptr.To[int64](30)),
			tol(v1.TaintNodeNotReady, v1.TolerationOpExists, ptr.To[int64](5)),
		}, taints: []v1.Taint{unreachable, notReady}, want: t0.Add(15 * time.Second), wantOK: true},
		{name: "wildcard toleration", tols: []v1.Toleration{{Operator: v1.TolerationOpExists}},
			taints: []v1.Taint{unreachable, notReady, custom}, wantOK: false},
		{name: "NoSchedule toleration does not cover NoExecute",
			tols:   []v1.Toleration{{Key: v1.TaintNodeUnreachable, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}},
			taints: []v1.Taint{unreachable}, want: t0, wantOK: true},
		{name: "value must match with Equal", tols: []v1.Toleration{{Key: "dedicated", Value: "web", Effect: v1.TaintEffectNoExecute}},
			taints: []v1.Taint{custom}, want: t0, wantOK: true},
		{name: "Equal with matching value", tols: []v1.Toleration{{Key: "dedicated", Operator: v1.TolerationOpEqual, Value: "db"}},
			taints: []v1.Taint{custom}, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := evictAt(tt.tols, tt.taints, func(t v1.Taint) time.Time { return since[t.Key] })
			if ok != tt.wantOK || !got.Equal(tt.want) {
				t.Errorf("evictAt = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestTolerates(t *testing.T) {
	taint := v1.Taint{Key: "gpu", Value: "4", Effect: v1.TaintEffectNoExecute}
	tests := []struct {
		name string
		tol  v1.Toleration
		want bool
	}{
		{"exists", v1.Toleration{Key: "gpu", Operator: v1.TolerationOpExists}, true},
		{"equal", v1.Toleration{Key: "gpu", Value: "4"}, true},
		{"other value", v1.Toleration{Key: "gpu", Value: "2"}, false},
		{"other key", v1.Toleration{Key: "cpu", Operator: v1.TolerationOpExists}, false},
		{"other effect", v1.Toleration{Key: "gpu", Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}, false},
		{"lt", v1.Toleration{Key: "gpu", Operator: v1.TolerationOpLt, Value: "8"}, true},
		{"gt", v1.Toleration{Key: "gpu", Operator: v1.TolerationOpGt, Value: "8"}, false},
		{"lt not a number", v1.Toleration{Key: "gpu", Operator: v1.TolerationOpLt, Value: "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tolerates(tt.tol, taint); got != tt.want {
				t.Errorf("tolerates = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDesiredTaints(t *testing.T) {
	all := append(append([]taintID{}, unreachableTaints...), notReadyTaints...)
	noSched := func(key string) taintID { return taintID{key, v1.TaintEffectNoSchedule} }
	tests := []struct {
		name     string
		st       nodeState
		current  []taintID
		suppress bool
		full     bool
		want     []taintID
	}{
		{name: "ready: none", st: stateReady, current: all, want: nil},
		{name: "unreachable", st: stateUnreachable, want: unreachableTaints},
		{name: "not ready replaces unreachable", st: stateNotReady, current: unreachableTaints, want: notReadyTaints},
		{name: "unknown keeps what it has", st: stateUnknown, current: unreachableTaints, want: unreachableTaints},
		{name: "suppressed: no additions", st: stateUnreachable, suppress: true, want: nil},
		{name: "suppressed: ready still clears", st: stateReady, current: unreachableTaints, suppress: true, want: nil},
		{name: "full disruption: no NoExecute", st: stateUnreachable, full: true, want: []taintID{noSched(v1.TaintNodeUnreachable)}},
		{name: "full disruption removes NoExecute kept by suppression", st: stateUnreachable, current: notReadyTaints, suppress: true, full: true,
			want: []taintID{noSched(v1.TaintNodeNotReady)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := desiredTaints(tt.st, tt.current, tt.suppress, tt.full)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("desiredTaints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyTaints(t *testing.T) {
	old := metav1.NewTime(t0)
	now := t0.Add(time.Minute)
	newT := metav1.NewTime(now)
	user := v1.Taint{Key: "dedicated", Value: "db", Effect: v1.TaintEffectNoSchedule}
	unrNS := v1.Taint{Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoSchedule, TimeAdded: &old}
	tests := []struct {
		name        string
		taints      []v1.Taint
		want        []taintID
		wantTaints  []v1.Taint
		wantChanged bool
	}{
		{name: "nothing to do", taints: []v1.Taint{user}, wantTaints: []v1.Taint{user}},
		{name: "add keeps other taints, stamps time", taints: []v1.Taint{user, unrNS}, want: unreachableTaints, wantChanged: true,
			wantTaints: []v1.Taint{user, unrNS, {Key: v1.TaintNodeUnreachable, Effect: v1.TaintEffectNoExecute, TimeAdded: &newT}}},
		{name: "remove only owned", taints: []v1.Taint{unrNS, user}, want: nil, wantChanged: true, wantTaints: []v1.Taint{user}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := applyTaints(tt.taints, tt.want, now)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.wantTaints, got); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUnknownConditions(t *testing.T) {
	hb := metav1.NewTime(t0)
	now := metav1.NewTime(t0.Add(time.Minute))
	unknown := func(typ v1.NodeConditionType, lastHB metav1.Time) v1.NodeCondition {
		return v1.NodeCondition{Type: typ, Status: v1.ConditionUnknown, Reason: "NodeStatusUnknown",
			Message: "Kubelet stopped posting node status.", LastHeartbeatTime: lastHB, LastTransitionTime: now}
	}
	netDown := v1.NodeCondition{Type: v1.NodeNetworkUnavailable, Status: v1.ConditionFalse}
	tests := []struct {
		name        string
		conds       []v1.NodeCondition
		want        []v1.NodeCondition
		wantChanged bool
	}{
		{
			name: "all reported conditions become unknown, heartbeats kept",
			conds: []v1.NodeCondition{
				{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: hb},
				{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, LastHeartbeatTime: hb},
				netDown,
			},
			want:        []v1.NodeCondition{unknown(v1.NodeReady, hb), unknown(v1.NodeMemoryPressure, hb), netDown},
			wantChanged: true,
		},
		{name: "missing Ready is added", want: []v1.NodeCondition{unknown(v1.NodeReady, metav1.Time{})}, wantChanged: true},
		{name: "already unknown", conds: []v1.NodeCondition{unknown(v1.NodeReady, hb)}, want: []v1.NodeCondition{unknown(v1.NodeReady, hb)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := unknownConditions(tt.conds, now)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFullDisruption(t *testing.T) {
	tests := []struct {
		name   string
		states map[string]nodeState
		want   bool
	}{
		{"no nodes", map[string]nodeState{}, false},
		{"single dead node", map[string]nodeState{"a": stateUnreachable}, false},
		{"one ready", map[string]nodeState{"a": stateUnreachable, "b": stateReady}, false},
		{"none ready", map[string]nodeState{"a": stateUnreachable, "b": stateNotReady, "c": stateUnknown}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fullDisruption(tt.states); got != tt.want {
				t.Errorf("fullDisruption = %v, want %v", got, tt.want)
			}
		})
	}
}
