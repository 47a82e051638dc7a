package cronjob

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"wharf.dev/wharf/internal/controllers/controllerutil/fakeapi"
)

const ns = "default"

// t0 is a Wednesday, 10:00 UTC.
var t0 = time.Date(2025, 1, 1, 10, 0, 0, 0, time.UTC)

var jobsResource = batchv1.SchemeGroupVersion.WithResource("jobs")

// env is a CronJob controller on fakeapi and a fake clock. The test plays
// the Job controller: it sets Job status by hand.
type env struct {
	t     *testing.T
	ctx   context.Context
	cs    *fake.Clientset
	rec   *fakeapi.Recorder
	clock *clocktesting.FakeClock
	c     *Controller
	queue *recordingQueue
}

// newEnv builds the controller over seeds, stored as given (uid, times,
// status), with the clock at now; the informers have synced, nothing runs.
func newEnv(t *testing.T, now time.Time, seeds ...runtime.Object) (*env, informers.SharedInformerFactory) {
	t.Helper()
	clk := clocktesting.NewFakeClock(now)
	cs := fakeapi.New(fakeapi.Options{Now: clk.Now})
	for _, obj := range seeds {
		if err := cs.Tracker().Add(obj); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	rec := &fakeapi.Recorder{}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := New(logger, cs, factory, rec, WithClock(clk))
	q := &recordingQueue{TypedRateLimitingInterface: c.queue, clock: clk}
	c.queue = q
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("cache of %v did not sync", typ)
		}
	}
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	cs.ClearActions()
	return &env{t: t, ctx: ctx, cs: cs, rec: rec, clock: clk, c: c, queue: q}, factory
}

// run starts the controller's workers until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(e.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.c.Run(ctx, 2) })
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// recordingQueue notes when each delayed add is due, so that a test steps
// the fake clock only once the controller has asked to be woken.
type recordingQueue struct {
	workqueue.TypedRateLimitingInterface[string]
	clock *clocktesting.FakeClock

	mu  sync.Mutex
	due []time.Time
}

func (q *recordingQueue) AddAfter(key string, d time.Duration) {
	q.mu.Lock()
	q.due = append(q.due, q.clock.Now().Add(d))
	q.mu.Unlock()
	q.TypedRateLimitingInterface.AddAfter(key, d)
}

func (q *recordingQueue) dueAt(t time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.ContainsFunc(q.due, t.Equal)
}

func (q *recordingQueue) String() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return fmt.Sprint(q.due)
}

// newCronJob is "tick", created at t0 with the API server's defaults.
func newCronJob(schedule string, mutate ...func(*batchv1.CronJob)) *batchv1.CronJob {
	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{
			Name: "tick", Namespace: ns, UID: "cj-uid", ResourceVersion: "1",
			CreationTimestamp: metav1.NewTime(t0),
		},
		Spec: batchv1.CronJobSpec{
			Schedule:                   schedule,
			ConcurrencyPolicy:          batchv1.AllowConcurrent,
			Suspend:                    ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To(int32(3)),
			FailedJobsHistoryLimit:     ptr.To(int32(1)),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "tick"}, Annotations: map[string]string{"note": "x"}},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To(int32(2)),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyOnFailure,
						Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
					}},
				},
			},
		},
	}
	for _, m := range mutate {
		m(cj)
	}
	return cj
}

// nameAt is the name of tick's Job for a scheduled time: the minutes since
// the epoch.
func nameAt(t time.Time) string { return fmt.Sprintf("tick-%d", t.Unix()/60) }

// newJob is a Job tick controls, started at start.
func newJob(name string, start time.Time, mutate ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID("uid-" + name), ResourceVersion: "1",
			CreationTimestamp: metav1.NewTime(start),
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "CronJob", Name: "tick", UID: "cj-uid", Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Status: batchv1.JobStatus{StartTime: ptr.To(metav1.NewTime(start))},
	}
	for _, m := range mutate {
		m(j)
	}
	return j
}

// finishedAt marks a Job finished (Complete or Failed) at t.
func finishedAt(cond batchv1.JobConditionType, t time.Time) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: cond, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t)})
		if cond == batchv1.JobComplete {
			j.Status.CompletionTime = ptr.To(metav1.NewTime(t))
		}
	}
}

// activeRef is the status.active entry of a Job.
func activeRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: "Job", APIVersion: "batch/v1", Namespace: j.Namespace, Name: j.Name, UID: j.UID, ResourceVersion: j.ResourceVersion}
}

func withActive(jobs ...*batchv1.Job) func(*batchv1.CronJob) {
	return func(cj *batchv1.CronJob) {
		for _, j := range jobs {
			cj.Status.Active = append(cj.Status.Active, activeRef(j))
		}
	}
}

func withLastSchedule(t time.Time) func(*batchv1.CronJob) {
	return func(cj *batchv1.CronJob) { cj.Status.LastScheduleTime = ptr.To(metav1.NewTime(t)) }
}

func (e *env) getCronJob() *batchv1.CronJob {
	e.t.Helper()
	cj, err := e.cs.BatchV1().CronJobs(ns).Get(e.ctx, "tick", metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get cronjob: %v", err)
	}
	return cj
}

func (e *env) getJob(name string) *batchv1.Job {
	e.t.Helper()
	j, err := e.cs.BatchV1().Jobs(ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatalf("get job: %v", err)
	}
	return j
}

func (e *env) jobNames() []string {
	e.t.Helper()
	l, err := e.cs.BatchV1().Jobs(ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Fatalf("list jobs: %v", err)
	}
	var out []string
	for _, j := range l.Items {
		out = append(out, j.Name)
	}
	slices.Sort(out)
	return out
}

// finishJob plays the Job controller: the Job finished at the clock's time.
func (e *env) finishJob(name string, cond batchv1.JobConditionType) {
	e.t.Helper()
	j := e.getJob(name)
	if j.Status.StartTime == nil {
		j.Status.StartTime = ptr.To(metav1.NewTime(j.CreationTimestamp.Time))
	}
	finishedAt(cond, e.clock.Now())(j)
	if _, err := e.cs.BatchV1().Jobs(ns).UpdateStatus(e.ctx, j, metav1.UpdateOptions{}); err != nil {
		e.t.Fatalf("update job status: %v", err)
	}
}

// jobActions returns the names of the Jobs created and deleted so far, and
// whether every deletion propagated in the background.
func (e *env) jobActions() (created, deleted []string, background bool) {
	background = true
	for _, a := range e.cs.Actions() {
		if a.GetResource() != jobsResource || a.GetSubresource() != "" {
			continue
		}
		switch a := a.(type) {
		case k8stesting.CreateActionImpl:
			created = append(created, a.GetObject().(*batchv1.Job).Name)
		case k8stesting.DeleteActionImpl:
			deleted = append(deleted, a.GetName())
			p := a.GetDeleteOptions().PropagationPolicy
			background = background && p != nil && *p == metav1.DeletePropagationBackground
		}
	}
	return created, deleted, background
}

func (e *env) statusWrites() int {
	n := 0
	for _, a := range e.cs.Actions() {
		if a.GetVerb() == "update" && a.GetResource().Resource == "cronjobs" && a.GetSubresource() == "status" {
			n++
		}
	}
	return n
}

func (e *env) eventReasons() []string {
	var out []string
	for _, ev := range e.rec.Events() {
		out = append(out, ev.Reason)
	}
	return out
}

func (e *env) events(reason string) []fakeapi.Event {
	var out []fakeapi.Event
	for _, ev := range e.rec.Events() {
		if ev.Reason == reason {
			out = append(out, ev)
		}
	}
	return out
}
