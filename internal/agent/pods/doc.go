// Package pods is the heart of the node agent: the pod workers that run
// the pods bound to this node through CRI, like the kubelet's pod workers
// and kuberuntime manager.
//
// A Manager watches the node's pods (and the ConfigMaps and Secrets they
// use) and runs one worker per pod UID. A worker's sync reads the pod's
// sandboxes and containers from the runtime (found by the kubelet's
// io.kubernetes.* labels, never by local bookkeeping, so an agent restart
// adopts whatever is running), decides what to do, does it, and reports
// the pod's status to the API only when it changed:
//
//   - create the sandbox, then run the init containers one at a time, then
//     start every container, pulling images first as imagePullPolicy says;
//   - restart exited containers as restartPolicy says, with exponential
//     back-off per container (the first restart is immediate, then
//     BackOffInitial doubling to BackOffMax; reset after 10 minutes of
//     healthy running);
//   - run startup, liveness and readiness probes (package probe) and
//     restart containers whose liveness or startup probe fails;
//   - on deletion, run preStop hooks, stop the containers within the grace
//     period, remove sandbox, containers, volumes and cgroups, then delete
//     the pod object with a UID precondition;
//   - remove the runtime objects and directories of pods that no longer
//     exist (the orphan sweep).
//
// A relist loop (the kubelet's PLEG) lists the runtime every second and
// wakes the workers of pods whose containers changed, plus those whose
// back-off or retry is due; every ten seconds all workers resync. Nothing
// busy-loops: CRI failures are retried with back-off and never touch
// containers that are running.
//
// Paths, labels and names follow docs/agent.md.
package pods
