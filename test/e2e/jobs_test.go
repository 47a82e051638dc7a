//go:build e2e

package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"wharf.dev/wharf/internal/testserver"
)

// TestJobs runs Jobs on a real node: one of 3 completions two at a time
// completes, one whose pods exit 1 fails after its backoffLimit, an
// Indexed one's pods each see their own JOB_COMPLETION_INDEX and hostname,
// and a finished Job with ttlSecondsAfterFinished goes by itself.
func TestJobs(t *testing.T) {
	c := upCluster(t)
	c.Eventually(`e2e\s+Ready`, "get", "nodes")

	t.Run("completions", func(t *testing.T) {
		c.RunIn(`apiVersion: batch/v1
kind: Job
metadata: {name: three}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: registry.wharf.local/wharf/testapp:v1, args: [sleep, "1"]}]
`, "apply", "-f", "-")
		c.Run("wait", "--for=condition=complete", "job/three", "--timeout=120s")
		// kubectl's columns: STATUS, COMPLETIONS as succeeded/completions, DURATION.
		out := c.Run("get", "job", "three")
		if !regexp.MustCompile(`three\s+Complete\s+3/3\s+\d+s\s+`).MatchString(out) {
			t.Errorf("kubectl get job:\n%s", out)
		}
		pods := c.Run("get", "pods", "-l", "batch.kubernetes.io/job-name=three", "-o", "jsonpath={range .items[*]}{.status.phase} {.metadata.finalizers}{\"\\n\"}{end}")
		if strings.Count(pods, "Succeeded") != 3 || strings.Contains(pods, "job-tracking") {
			t.Errorf("pods (phase, finalizers), want 3 Succeeded without the tracking finalizer:\n%s", pods)
		}
		testserver.Contains(t, c.Run("get", "job", "three", "-o", "jsonpath={.status.conditions[*].type} {.status.succeeded} {.status.uncountedTerminatedPods}"),
			"SuccessCriteriaMet Complete 3 {}")
		c.Eventually(`SuccessfulCreate\s+job/three\s+Created pod: three-`, "get", "events", "--field-selector", "involvedObject.name=three")
		c.Eventually(`Completed\s+job/three\s+Job completed`, "get", "events", "--field-selector", "involvedObject.name=three")
	})

	t.Run("backoff-limit", func(t *testing.T) {
		c.RunIn(`apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: registry.wharf.local/wharf/testapp:v1, args: [exit, --code, "1"]}]
`, "apply", "-f", "-")
		// The second pod waits out the 10 s back-off after the first failure.
		c.Run("wait", "--for=condition=failed", "job/fails", "--timeout=120s")
		// status.active is 0, so left out.
		got := c.Run("get", "job", "fails", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].reason} {.status.failed} active={.status.active} ready={.status.ready}`)
		if got != "BackoffLimitExceeded 2 active= ready=0" {
			t.Errorf("failed reason, failed, active, ready = %q, want BackoffLimitExceeded 2 active= ready=0", got)
		}
		if out := c.Run("get", "job", "fails"); !regexp.MustCompile(`fails\s+Failed\s+0/1\s+`).MatchString(out) {
			t.Errorf("kubectl get job:\n%s", out)
		}
		exits := c.Run("get", "pods", "-l", "batch.kubernetes.io/job-name=fails", "-o", "jsonpath={range .items[*]}{.status.phase}/{.status.containerStatuses[0].state.terminated.exitCode} {end}")
		if exits != "Failed/1 Failed/1 " {
			t.Errorf("pods phase/exit code: %q, want two Failed/1", exits)
		}
		c.Eventually(`BackoffLimitExceeded\s+.*Job has reached the specified backoff limit`, "get", "events", "--field-selector", "involvedObject.name=fails")
	})

	t.Run("indexed", func(t *testing.T) {
		c.RunIn(`apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: registry.wharf.local/wharf/busybox:v1
        command: [sh, -c, 'echo "index=$JOB_COMPLETION_INDEX host=$(hostname)"']
`, "apply", "-f", "-")
		c.Run("wait", "--for=condition=complete", "job/idx", "--timeout=120s")
		testserver.Contains(t, c.Run("get", "job", "idx", "-o", "jsonpath={.status.completedIndexes}"), "0-2")
		lines := c.Run("get", "pods", "-l", "batch.kubernetes.io/job-name=idx", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.batch\.kubernetes\.io/job-completion-index}{"\n"}{end}`)
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(lines), "\n") {
			var pod, ix string
			if _, err := fmt.Sscan(line, &pod, &ix); err != nil {
				t.Fatalf("pod line %q: %v", line, err)
			}
			seen[ix] = true
			want := fmt.Sprintf("index=%s host=idx-%s", ix, ix)
			if got := strings.TrimSpace(c.Run("logs", pod)); got != want {
				t.Errorf("pod %s (index %s) printed %q, want %q", pod, ix, got, want)
			}
		}
		if len(seen) != 3 || !seen["0"] || !seen["1"] || !seen["2"] {
			t.Errorf("indexes of the pods: %v, want 0, 1 and 2", seen)
		}
	})

	t.Run("pod-failure-policy", func(t *testing.T) {
		// Exit 42 fails the Job at once, whatever the backoffLimit.
		c.RunIn(`apiVersion: batch/v1
kind: Job
metadata: {name: policy}
spec:
  backoffLimit: 6
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {containerName: work, operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: registry.wharf.local/wharf/testapp:v1, args: [exit, --code, "42"]}]
`, "apply", "-f", "-")
		c.Run("wait", "--for=condition=failed", "job/policy", "--timeout=120s")
		got := c.Run("get", "job", "policy", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].reason} {.status.failed}`)
		if got != "PodFailurePolicy 1" {
			t.Errorf("failed reason and count = %q, want PodFailurePolicy 1 (no retries)", got)
		}
		testserver.Contains(t, c.Run("get", "job", "policy", "-o", `jsonpath={.status.conditions[?(@.type=="Failed")].message}`),
			"Container work for pod default/policy-", "failed with exit code 42 matching FailJob rule at index 0")
	})

	t.Run("ttl-after-finished", func(t *testing.T) {
		c.RunIn(`apiVersion: batch/v1
kind: Job
metadata: {name: brief}
spec:
  ttlSecondsAfterFinished: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: work, image: registry.wharf.local/wharf/testapp:v1, args: [exit, --code, "0"]}]
`, "apply", "-f", "-")
		c.Run("wait", "--for=condition=complete", "job/brief", "--timeout=120s")
		// Foreground deletion: the pod goes, then the Job.
		testserver.WaitFor(t, "the Job and its pod to go", 60*time.Second, func() (bool, error) {
			out, _ := c.Cmd("", "get", "pods", "-l", "batch.kubernetes.io/job-name=brief", "-o", "name").CombinedOutput()
			job, _ := c.Cmd("", "get", "job", "brief", "-o", "name").CombinedOutput()
			gone := strings.TrimSpace(string(out)) == "" && strings.Contains(string(job), "NotFound")
			return gone, fmt.Errorf("left: %s %s", out, job)
		})
	})
}
