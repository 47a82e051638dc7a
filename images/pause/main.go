// Command pause is the process of a pod sandbox. It holds the pod's
// namespaces open by doing nothing, and, being PID 1 of the sandbox's PID
// namespace when containers share it, reaps the zombies that orphaned
// processes leave behind. SIGTERM or SIGINT end it with status 0.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Signals sent to PID 1 are ignored unless handled, so without these
	// handlers the runtime could only SIGKILL the sandbox.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child. Signals coalesce, so one SIGCHLD may
// stand for several exits: loop until none is left.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
