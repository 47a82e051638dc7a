package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// budget is a PodDisruptionBudget's spec and the status the disruption
// controller would have written (the test server runs no controllers).
type budget struct {
	name    string
	policy  *policyv1.UnhealthyPodEvictionPolicyType
	allowed int32
	current int32
	desired int32
	behind  bool // status.observedGeneration behind metadata.generation
}

func createBudget(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns string, b budget) {
	t.Helper()
	pdbs := cs.PolicyV1().PodDisruptionBudgets(ns)
	pdb, err := pdbs.Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: b.name},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable:               ptr.To(intstr.FromInt32(b.desired)),
			Selector:                   &metav1.LabelSelector{MatchLabels: map[string]string{"app": "t"}},
			UnhealthyPodEvictionPolicy: b.policy,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Status = policyv1.PodDisruptionBudgetStatus{
		ObservedGeneration: pdb.Generation, DisruptionsAllowed: b.allowed,
		CurrentHealthy: b.current, DesiredHealthy: b.desired, ExpectedPods: b.current,
	}
	if b.behind {
		pdb.Status.ObservedGeneration = pdb.Generation - 1
	}
	if _, err := pdbs.UpdateStatus(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createPodIn creates a pod bound to a node, in phase with Ready as given.
func createPodIn(ctx context.Context, t *testing.T, cs kubernetes.Interface, ns, name string, phase corev1.PodPhase, ready bool) *corev1.Pod {
	t.Helper()
	pods := cs.CoreV1().Pods(ns)
	if _, err := pods.Create(ctx, newPod(name), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pods.Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = phase
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: status})
	if pod, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return pod
}

func TestEvictionHonoursDisruptionBudgets(t *testing.T) {
	s := startAPIOnly(t)
	always := ptr.To(policyv1.AlwaysAllow)
	tests := []struct {
		name     string
		budgets  []budget
		phase    corev1.PodPhase
		notReady bool
		dryRun   bool
		wrongUID bool
		// wantCode is the HTTP status; 201 evicts.
		wantCode int
		wantMsg  string // in the error's message or its causes
		// wantAllowed is the first budget's disruptionsAllowed after.
		wantAllowed int32
		wantRecord  bool // the pod is in the budget's disruptedPods
	}{
		{name: "no budget", wantCode: 201},
		{name: "budget allows one", budgets: []budget{{name: "b", allowed: 1, current: 3, desired: 2}},
			wantCode: 201, wantAllowed: 0, wantRecord: true},
		{name: "budget allows none", budgets: []budget{{name: "b", allowed: 0, current: 2, desired: 2}},
			wantCode: 429, wantMsg: "Cannot evict pod as it would violate the pod's disruption budget.|The disruption budget b needs 2 healthy pods and has 2 currently"},
		{name: "budget not observed yet", budgets: []budget{{name: "b", allowed: 1, current: 3, desired: 2, behind: true}},
			wantCode: 429, wantAllowed: 1, wantMsg: "The disruption budget b is still being processed by the server."},
		{name: "two budgets", budgets: []budget{{name: "b", allowed: 1, current: 3, desired: 2}, {name: "c", allowed: 1, current: 3, desired: 2}},
			wantCode: 500, wantAllowed: 1, wantMsg: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."},
		{name: "pending pod ignores the budget", phase: corev1.PodPending, budgets: []budget{{name: "b"}}, wantCode: 201},
		{name: "failed pod ignores the budget", phase: corev1.PodFailed, budgets: []budget{{name: "b"}}, wantCode: 201},
		{name: "unready pod, healthy budget", notReady: true, budgets: []budget{{name: "b", allowed: 0, current: 2, desired: 2}},
			wantCode: 201},
		{name: "unready pod, unhealthy budget", notReady: true, budgets: []budget{{name: "b", allowed: 0, current: 1, desired: 2}},
			wantCode: 429, wantMsg: "needs 2 healthy pods and has 1 currently"},
		{name: "unready pod, AlwaysAllow", notReady: true, budgets: []budget{{name: "b", policy: always, allowed: 0, current: 1, desired: 2}},
			wantCode: 201},
		{name: "ready pod, AlwaysAllow still counts", budgets: []budget{{name: "b", policy: always, allowed: 0, current: 2, desired: 2}},
			wantCode: 429},
		{name: "dry run", dryRun: true, budgets: []budget{{name: "b", allowed: 1, current: 3, desired: 2}},
			wantCode: 201, wantAllowed: 1},
		{name: "uid precondition", wrongUID: true, wantCode: 409},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			ns := fmt.Sprintf("evict-%d", i)
			if _, err := s.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			phase := tt.phase
			if phase == "" {
				phase = corev1.PodRunning
			}
			pod := createPodIn(ctx, t, s.Client, ns, "p", phase, !tt.notReady)
			for _, b := range tt.budgets {
				createBudget(ctx, t, s.Client, ns, b)
			}
			ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns}, DeleteOptions: &metav1.DeleteOptions{}}
			if tt.dryRun {
				ev.DeleteOptions.DryRun = []string{metav1.DryRunAll}
			}
			uid := pod.UID
			if tt.wrongUID {
				uid = types.UID("another")
			}
			ev.DeleteOptions.Preconditions = metav1.NewUIDPreconditions(string(uid))
			err := s.Client.CoreV1().Pods(ns).EvictV1(ctx, ev)
			code := 201
			if err != nil {
				se, ok := err.(apierrors.APIStatus)
				if !ok {
					t.Fatalf("eviction error %v is not a Status", err)
				}
				code = int(se.Status().Code)
				msg := se.Status().Message
				if d := se.Status().Details; d != nil {
					for _, c := range d.Causes {
						msg += "|" + c.Message
					}
				}
				if !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("error message %q, want it to contain %q", msg, tt.wantMsg)
				}
			}
			if code != tt.wantCode {
				t.Fatalf("eviction: code %d (err %v), want %d", code, err, tt.wantCode)
			}
			after, gerr := s.Client.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
			evicted := code == http.StatusCreated && !tt.dryRun
			switch {
			case evicted && apierrors.IsNotFound(gerr):
				// Pending and failed pods go at once.
			case evicted && gerr == nil:
				if after.DeletionTimestamp == nil || !hasPodCondition(after, corev1.DisruptionTarget) {
					t.Errorf("evicted pod: deletionTimestamp %v, conditions %+v; want terminating with DisruptionTarget", after.DeletionTimestamp, after.Status.Conditions)
				}
			case gerr != nil:
				t.Fatalf("pod not evicted is gone: %v", gerr)
			case after.DeletionTimestamp != nil || hasPodCondition(after, corev1.DisruptionTarget):
				t.Errorf("pod not evicted is changed: deletionTimestamp %v, conditions %+v", after.DeletionTimestamp, after.Status.Conditions)
			}
			if len(tt.budgets) == 0 {
				return
			}
			pdb, err := s.Client.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, tt.budgets[0].name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if pdb.Status.DisruptionsAllowed != tt.wantAllowed {
				t.Errorf("disruptionsAllowed after: %d, want %d", pdb.Status.DisruptionsAllowed, tt.wantAllowed)
			}
			if _, ok := pdb.Status.DisruptedPods["p"]; ok != tt.wantRecord {
				t.Errorf("disruptedPods %v: recorded %v, want %v", pdb.Status.DisruptedPods, ok, tt.wantRecord)
			}
			if tt.wantRecord {
				c := pdb.Status.Conditions
				if len(c) != 1 || c[0].Type != policyv1.DisruptionAllowedCondition || c[0].Reason != policyv1.InsufficientPodsReason {
					t.Errorf("conditions after the last disruption was taken: %+v, want DisruptionAllowed False InsufficientPods", c)
				}
			}
		})
	}
}

func TestEvictionRequestValidation(t *testing.T) {
	s := startAPIOnly(t)
	ctx := ctxT(t)
	createPodIn(ctx, t, s.Client, "default", "v", corev1.PodRunning, true)
	err := s.Client.CoreV1().Pods("default").EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "other"}})
	if !apierrors.IsNotFound(err) {
		t.Errorf("eviction of a missing pod: %v, want NotFound", err)
	}
	// client-go posts to the eviction's own name: send a mismatch by hand.
	body := `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"other"}}`
	res := s.Client.CoreV1().RESTClient().Post().AbsPath("/api/v1/namespaces/default/pods/v/eviction").Body([]byte(body)).SetHeader("Content-Type", "application/json").Do(ctx)
	if err := res.Error(); !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "name in URL does not match name in Eviction object") {
		t.Errorf("eviction with another name: %v, want BadRequest", err)
	}
}
