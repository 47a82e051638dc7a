package probe

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	testclock "k8s.io/utils/clock/testing"

	"wharf.dev/wharf/internal/testwait"
)

func TestHook(t *testing.T) {
	var ran []string
	clk := testclock.NewFakeClock(time.Unix(0, 0))
	r := &Runner{Clock: clk, Exec: func(_ context.Context, id string, cmd []string, _ time.Duration) ([]byte, []byte, error) {
		ran = append(ran, id+":"+cmd[0])
		return nil, nil, nil
	}}
	if _, err := r.Hook(context.Background(), &v1.LifecycleHandler{Exec: &v1.ExecAction{Command: []string{"drain"}}}, Target{ContainerID: "c1"}, time.Second); err != nil || len(ran) != 1 || ran[0] != "c1:drain" {
		t.Errorf("exec hook: %v %v", err, ran)
	}
	done := make(chan error)
	go func() {
		_, err := r.Hook(context.Background(), &v1.LifecycleHandler{Sleep: &v1.SleepAction{Seconds: 5}}, Target{}, time.Minute)
		done <- err
	}()
	testwait.For(t, "the sleep hook to wait on the clock", func() (bool, string) { return clk.HasWaiters(), "no waiter" })
	clk.Step(5 * time.Second)
	if err := <-done; err != nil {
		t.Errorf("sleep hook: %v", err)
	}
	if _, err := r.Hook(context.Background(), &v1.LifecycleHandler{}, Target{}, time.Second); err == nil {
		t.Error("a hook without handler succeeded")
	}
}
