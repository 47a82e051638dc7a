//go:build integration

package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"wharf.dev/wharf/internal/testserver"
)

const cronJobManifest = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "*/1 * * * *"
  timeZone: Asia/Kolkata
  jobTemplate:
    metadata:
      labels:
        app: tick
      annotations:
        note: hello
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: c
            image: registry.wharf.local/wharf/testapp:v1
`

// TestCronJob runs a CronJob every minute on a real server with the real
// kubectl: `kubectl create job --from=cronjob/…` makes a Job at once (a
// plain create), and the controller makes the scheduled one within a
// minute, named and annotated as Kubernetes does, and reports it in status
// (kubectl get's LAST SCHEDULE and ACTIVE). No Job controller runs the
// Jobs: this checks the CronJob controller alone. It waits at most one
// real minute for the schedule.
func TestCronJob(t *testing.T) {
	const minor = "33"
	testserver.Kubectl(t, minor) // skips before starting a server when not installed
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	k := testserver.NewKubectl(t, minor, srv.kubeconfig())
	c := srv.client()
	ctx := testContext(t, 3*time.Minute)

	testserver.Contains(t, k.RunIn(cronJobManifest, "apply", "-f", "-"), "cronjob.batch/tick created")
	cj, err := c.BatchV1().CronJobs("default").Get(ctx, "tick", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	testserver.Contains(t, k.Run("create", "job", "tick-by-hand", "--from=cronjob/tick"), "job.batch/tick-by-hand created")
	manual, err := c.BatchV1().Jobs("default").Get(ctx, "tick-by-hand", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(manual); ref == nil || ref.Kind != "CronJob" || ref.UID != cj.UID {
		t.Errorf("job from the cronjob: controller %v, want the cronjob %s", ref, cj.UID)
	}
	if manual.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" || manual.Labels["app"] != "tick" {
		t.Errorf("job from the cronjob: labels %v annotations %v", manual.Labels, manual.Annotations)
	}

	// The next minute comes within 60 s; a few more for the server.
	var job batchv1.Job
	testserver.WaitFor(t, "the scheduled job", 65*time.Second, func() (bool, error) {
		l, err := c.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var names []string
		for _, j := range l.Items {
			if _, ok := j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]; ok {
				job = j
				return true, nil
			}
			names = append(names, j.Name)
		}
		return false, fmt.Errorf("jobs %v", names)
	})
	stamp := job.Annotations[batchv1.CronJobScheduledTimestampAnnotation]
	scheduled, err := time.Parse(time.RFC3339, stamp)
	if err != nil {
		t.Fatalf("scheduled-timestamp annotation %q: %v", stamp, err)
	}
	if !strings.HasSuffix(stamp, "+05:30") || scheduled.Second() != 0 || scheduled.Before(cj.CreationTimestamp.Time) {
		t.Errorf("scheduled-timestamp annotation %q: want a whole minute after the cronjob's creation (%v), in +05:30", stamp, cj.CreationTimestamp)
	}
	if want := fmt.Sprintf("tick-%d", scheduled.Unix()/60); job.Name != want {
		t.Errorf("job name %q, want %q", job.Name, want)
	}
	if ref := metav1.GetControllerOf(&job); ref == nil || ref.Kind != "CronJob" || ref.UID != cj.UID {
		t.Errorf("job %s controller %v, want the cronjob %s", job.Name, ref, cj.UID)
	}
	if job.Labels["app"] != "tick" || job.Annotations["note"] != "hello" {
		t.Errorf("job %s labels %v annotations %v, want the template's", job.Name, job.Labels, job.Annotations)
	}

	testserver.WaitFor(t, "status to list the job", 10*time.Second, func() (bool, error) {
		cj, err := c.BatchV1().CronJobs("default").Get(ctx, "tick", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		s := cj.Status
		ok := len(s.Active) == 1 && s.Active[0].Name == job.Name && s.Active[0].UID == job.UID &&
			s.LastScheduleTime != nil && s.LastScheduleTime.Equal(&metav1.Time{Time: scheduled})
		return ok, fmt.Errorf("status %+v", s)
	})
	// NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE: one active
	// (the job made by hand is not the controller's), scheduled seconds ago.
	out := k.Run("get", "cronjob", "tick")
	row := regexp.MustCompile(`(?m)^tick\s+\*/1 \* \* \* \*\s+Asia/Kolkata\s+False\s+1\s+(\d+s)\s+\S+\s*$`)
	if !row.MatchString(out) {
		t.Errorf("kubectl get cronjob tick: want 1 active and a LAST SCHEDULE seconds ago:\n%s", out)
	}
	// Events are written in the background.
	k.Eventually(`SuccessfulCreate\s.*Created job `+regexp.QuoteMeta(job.Name), "describe", "cronjob", "tick")
	k.Eventually(`UnexpectedJob\s.*tick-by-hand`, "describe", "cronjob", "tick")
}
