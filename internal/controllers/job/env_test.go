package job

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
	"wharf.dev/wharf/internal/resources"
	"wharf.dev/wharf/internal/testwait"
)

const ns = "default"

// env runs a Job controller against fakeapi, the test playing the kubelet.
type env struct {
	t   *testing.T
	ctx context.Context
	cs  *fake.Clientset
	rec *fakeapi.Recorder
}

// testBackoff is the pod failure back-off of tests: long enough to see
// that replacements wait, short enough to keep tests fast.
const testBackoff = 200 * time.Millisecond

func start(t *testing.T, opts fakeapi.Options, setup func(*fake.Clientset), ctrlOpts ...Option) *env {
	t.Helper()
	cs := fakeapi.New(opts)
	if setup != nil {
		setup(cs)
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	rec := &fakeapi.Recorder{}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctrlOpts = append([]Option{WithSyncBatchPeriod(0), WithPodFailureBackoff(testBackoff, 4*testBackoff)}, ctrlOpts...)
	c := New(logger, cs, factory, rec, ctrlOpts...)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	// The fake's watches start after the lists, and what changes between
	// is delivered as its latest state only: a pod created and deleted
	// meanwhile would be first seen deleting. Wait for the watches.
	testwait.For(t, "the informers' watches", func() (bool, string) {
		watching := map[string]bool{}
		for _, a := range cs.Actions() {
			if a.GetVerb() == "watch" {
				watching[a.GetResource().Resource] = true
			}
		}
		return watching["pods"] && watching["jobs"], fmt.Sprint(watching)
	})
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx, 2) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
	return &env{t: t, ctx: ctx, cs: cs, rec: rec}
}

// newJob returns a Job as the API server stores it after defaulting, with
// a selector on its name (the API server's would be on its uid, which
// fakeapi only assigns on create).
func newJob(name string, completions *int32, parallelism int32) *batchv1.Job {
	sel := map[string]string{batchv1.JobNameLabel: name}
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.JobSpec{
			Completions:    completions,
			Parallelism:    &parallelism,
			ManualSelector: ptr.To(true),
			Selector:       &metav1.LabelSelector{MatchLabels: sel},
			Template: v1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{batchv1.JobNameLabel: name, "app": "batch"}},
				Spec: v1.PodSpec{
					RestartPolicy: v1.RestartPolicyNever,
					Containers:    []v1.Container{{Name: "work", Image: "testapp:1"}},
				},
			},
		},
	}
	return j
}

// createJob defaults and validates job as Wharf's API server would, then
// creates it.
func (e *env) createJob(job *batchv1.Job) *batchv1.Job {
	e.t.Helper()
	r := resources.Jobs()
	r.Default(job)
	if errs := r.Validate(job); len(errs) > 0 {
		e.t.Fatalf("invalid test job: %v", errs.ToAggregate())
	}
	out, err := e.cs.BatchV1().Jobs(ns).Create(e.ctx, job, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("create job: %v", err)
	}
	return out
}

func (e *env) getJob(name string) *batchv1.Job {
	e.t.Helper()
	j, err := e.cs.BatchV1().Jobs(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get job: %v", err)
	}
	return j
}

// updateJob applies change to the stored Job, retrying on conflicts.
func (e *env) updateJob(name string, change func(*batchv1.Job)) {
	e.t.Helper()
	for {
		j := e.getJob(name)
		change(j)
		if _, err := e.cs.BatchV1().Jobs(ns).Update(e.ctx, j, metav1.UpdateOptions{}); err == nil {
			return
		}
	}
}

// pods returns the pods of the Job called job, sorted by name.
func (e *env) pods(job string) []v1.Pod {
	e.t.Helper()
	sel := labels.SelectorFromSet(labels.Set{batchv1.JobNameLabel: job}).String()
	list, err := e.cs.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		e.t.Fatalf("list pods: %v", err)
	}
	return list.Items
}

// running returns the pods of job that are neither finished nor deleted.
func (e *env) running(job string) []v1.Pod {
	var out []v1.Pod
	for _, p := range e.pods(job) {
		if p.Status.Phase != v1.PodSucceeded && p.Status.Phase != v1.PodFailed && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// updatePodStatus applies change to the pod's stored status, retrying on
// conflicts, as the kubelet does.
func (e *env) updatePodStatus(name string, change func(*v1.Pod)) {
	e.t.Helper()
	for {
		pod, err := e.cs.CoreV1().Pods(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			e.t.Fatalf("get pod %s: %v", name, err)
		}
		change(pod)
		if _, err := e.cs.CoreV1().Pods(ns).UpdateStatus(e.ctx, pod, metav1.UpdateOptions{}); err == nil {
			return
		}
	}
}

// markRunning plays the kubelet: the pod runs and is ready.
func (e *env) markRunning(name string) {
	e.t.Helper()
	e.updatePodStatus(name, func(p *v1.Pod) {
		now := metav1.Now()
		p.Spec.NodeName = "node-1"
		p.Status.Phase = v1.PodRunning
		p.Status.Conditions = []v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: now}}
		p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "work", Ready: true, State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}}}}
	})
}

// exit plays the kubelet: the pod's container exits with code, so the pod
// Succeeded (0) or Failed; conditions are added to its status.
func (e *env) exit(name string, code int32, conds ...v1.PodCondition) {
	e.t.Helper()
	e.updatePodStatus(name, func(p *v1.Pod) {
		now := metav1.Now()
		p.Spec.NodeName = "node-1"
		p.Status.Phase = v1.PodSucceeded
		if code != 0 {
			p.Status.Phase = v1.PodFailed
		}
		p.Status.Conditions = append([]v1.PodCondition{{Type: v1.PodReady, Status: v1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: now}}, conds...)
		p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "work", State: v1.ContainerState{
			Terminated: &v1.ContainerStateTerminated{ExitCode: code, StartedAt: now, FinishedAt: now},
		}}}
	})
}

func (e *env) countEvents(reason string) int {
	n := 0
	for _, ev := range e.rec.Events() {
		if ev.Reason == reason {
			n++
		}
	}
	return n
}

// waitEvent waits for an event: the controller records some after the
// status write that a test may see first.
func (e *env) waitEvent(typ, reason, msgPart string) {
	e.t.Helper()
	testwait.For(e.t, "a "+reason+" event", func() (bool, string) {
		return e.hasEvent(typ, reason, msgPart), fmt.Sprint(e.rec.Events())
	})
}

func (e *env) hasEvent(typ, reason, msgPart string) bool {
	for _, ev := range e.rec.Events() {
		if ev.Type == typ && ev.Reason == reason && strings.Contains(ev.Message, msgPart) {
			return true
		}
	}
	return false
}

// waitJob waits until cond holds for the stored Job.
func (e *env) waitJob(name, what string, cond func(*batchv1.Job) bool) *batchv1.Job {
	e.t.Helper()
	var j *batchv1.Job
	testwait.For(e.t, what, func() (bool, string) {
		j = e.getJob(name)
		return cond(j), statusString(j) + " pods: " + podsString(e.pods(name))
	})
	return j
}

// waitRunning waits until n pods of job run (not finished, not deleted)
// and returns their names.
func (e *env) waitRunning(job string, n int) []string {
	e.t.Helper()
	var names []string
	testwait.For(e.t, fmt.Sprintf("%d pods of %s running", n, job), func() (bool, string) {
		names = names[:0]
		for _, p := range e.running(job) {
			names = append(names, p.Name)
		}
		return len(names) == n, podsString(e.pods(job))
	})
	return names
}

func condition(j *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == t {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func hasCondition(j *batchv1.Job, t batchv1.JobConditionType, reason string) bool {
	c := condition(j, t)
	return c != nil && c.Status == v1.ConditionTrue && (reason == "" || c.Reason == reason)
}

// conditionTypes lists the Job's condition types in order, with status.
func conditionTypes(j *batchv1.Job) []string {
	var out []string
	for _, c := range j.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	return out
}

func statusString(j *batchv1.Job) string {
	s := j.Status
	u := "nil"
	if s.UncountedTerminatedPods != nil {
		u = fmt.Sprintf("%d/%d", len(s.UncountedTerminatedPods.Succeeded), len(s.UncountedTerminatedPods.Failed))
	}
	return fmt.Sprintf("active %d ready %d terminating %d succeeded %d failed %d uncounted %s completed %q failedIndexes %v conditions %v",
		s.Active, ptr.Deref(s.Ready, -1), ptr.Deref(s.Terminating, -1), s.Succeeded, s.Failed, u, s.CompletedIndexes, ptr.Deref(s.FailedIndexes, "nil"), conditionTypes(j))
}

func podsString(pods []v1.Pod) string {
	var parts []string
	for _, p := range pods {
		d := ""
		if p.DeletionTimestamp != nil {
			d = " deleting"
		}
		parts = append(parts, fmt.Sprintf("%s(%s%s fin=%v)", p.Name, p.Status.Phase, d, p.Finalizers))
	}
	return strings.Join(parts, " ")
}
