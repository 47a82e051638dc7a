package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// fakeClock is advanced by hand so queue timing is tested without sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock            { return &fakeClock{t: time.Unix(1_000_000, 0)} }
func testQueue(c *fakeClock) *queue {
	return newQueue(c.now, time.Second, 4*time.Second, 10*time.Second)
}
func queued(name string) (string, *corev1.Pod) { return "default/" + name, makePod(name) }
func addPod(q *queue, name string)             { q.add("default/"+name, makePod(name), true) }

// drain pops every active pod without blocking.
func drain(q *queue) []string {
	var keys []string
	for {
		active, _, _ := q.lengths()
		if active == 0 {
			return keys
		}
		e, _, _ := q.pop()
		keys = append(keys, e.key)
	}
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name string
		run  func(q *queue, c *fakeClock) []string // returns the keys popped at the end
		want []string
	}{
		{
			name: "fifo with dedup",
			run: func(q *queue, c *fakeClock) []string {
				for _, n := range []string{"a", "b", "a", "c", "b"} {
					addPod(q, n)
				}
				return drain(q)
			},
			want: []string{"default/a", "default/b", "default/c"},
		},
		{
			name: "deleted pods leave the queue",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				addPod(q, "b")
				q.delete("default/a")
				return drain(q)
			},
			want: []string{"default/b"},
		},
		{
			name: "unschedulable waits for a cluster change",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				e, _, _ := q.pop()
				q.unschedulable(e, "no")
				c.step(5 * time.Second)
				q.flush()
				if got := drain(q); len(got) != 0 {
					return append([]string{"early"}, got...)
				}
				q.moveAll()
				return drain(q)
			},
			want: []string{"default/a"},
		},
		{
			name: "unschedulable retried periodically",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				e, _, _ := q.pop()
				q.unschedulable(e, "no")
				c.step(10 * time.Second)
				q.flush()
				return drain(q)
			},
			want: []string{"default/a"},
		},
		{
			name: "change while in flight retries after back-off",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				e, _, _ := q.pop()
				q.moveAll() // e.g. a node was added during the cycle
				q.unschedulable(e, "no")
				if got := drain(q); len(got) != 0 {
					return append([]string{"before back-off"}, got...)
				}
				c.step(time.Second)
				q.flush()
				return drain(q)
			},
			want: []string{"default/a"},
		},
		{
			name: "moved pods still in back-off wait for it",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				e, _, _ := q.pop()
				q.unschedulable(e, "no")
				q.moveAll()
				first := drain(q)
				c.step(time.Second)
				q.flush()
				return append(first, drain(q)...)
			},
			want: []string{"default/a"},
		},
		{
			name: "back-off doubles up to the maximum",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				var got []string
				for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
					e, _, _ := q.pop()
					q.retry(e)
					c.step(wait - time.Millisecond)
					q.flush()
					if n := len(drain(q)); n != 0 {
						got = append(got, "early after "+(wait-time.Millisecond).String())
					}
					c.step(time.Millisecond)
					q.flush()
					active, _, _ := q.lengths()
					got = append(got, "active "+wait.String()+" "+map[bool]string{true: "yes", false: "no"}[active == 1])
				}
				return got
			},
			want: []string{"active 1s yes", "active 2s yes", "active 4s yes", "active 4s yes"},
		},
		{
			name: "spec change wakes an unschedulable pod",
			run: func(q *queue, c *fakeClock) []string {
				key, pod := queued("a")
				q.add(key, pod, true)
				e, _, _ := q.pop()
				q.unschedulable(e, "no")
				q.add(key, pod, false) // status-only update: stays parked
				if got := drain(q); len(got) != 0 {
					return append([]string{"woken by status"}, got...)
				}
				q.add(key, pod, true)
				return drain(q)
			},
			want: []string{"default/a"},
		},
		{
			name: "done pods are forgotten",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				e, _, _ := q.pop()
				q.done(e)
				q.moveAll()
				c.step(time.Minute)
				q.flush()
				if q.has("default/a") {
					return []string{"still queued"}
				}
				return drain(q)
			},
		},
		{
			name: "pod deleted in flight is not parked",
			run: func(q *queue, c *fakeClock) []string {
				addPod(q, "a")
				e, _, _ := q.pop()
				q.delete("default/a")
				if q.unschedulable(e, "no") {
					return []string{"reported"}
				}
				q.moveAll()
				return drain(q)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			got := tc.run(testQueue(c), c)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueueMessageDedup(t *testing.T) {
	c := newFakeClock()
	q := testQueue(c)
	addPod(q, "a")
	var got []bool
	for _, msg := range []string{"x", "x", "y", "y", "x"} {
		e, _, _ := q.pop()
		got = append(got, q.unschedulable(e, msg))
		q.moveAll()
		c.step(time.Minute)
		q.flush()
	}
	if diff := cmp.Diff([]bool{true, false, true, false, true}, got); diff != "" {
		t.Errorf("new message reported (-want +got):\n%s", diff)
	}
}

func TestQueuePopBlocksUntilClose(t *testing.T) {
	q := testQueue(newFakeClock())
	done := make(chan bool)
	go func() {
		_, _, ok := q.pop()
		done <- ok
	}()
	q.close()
	if ok := <-done; ok {
		t.Error("pop on a closed empty queue returned a pod")
	}
}

func TestQueueCompacts(t *testing.T) {
	q := testQueue(newFakeClock())
	// A queue that never drains must not keep every popped slot.
	for i := range 10_000 {
		addPod(q, fmt.Sprintf("p%d", i))
		if i%2 == 1 {
			e, _, _ := q.pop()
			q.done(e)
		}
	}
	if len(q.fifo) > 2*5_000+1 {
		t.Errorf("fifo holds %d slots for %d active pods", len(q.fifo), len(q.fifo)-q.head)
	}
}
