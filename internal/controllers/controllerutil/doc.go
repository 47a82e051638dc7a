// Package controllerutil holds the small pieces that Wharf's workload
// controllers share, modelled on Kubernetes' pkg/controller helpers:
//
//   - Expectations: creations and deletions a controller has issued but not
//     yet seen through its informers, so that a sync running on a stale cache
//     never creates or deletes the same object twice.
//   - Pod readiness and availability (Ready condition, minReadySeconds).
//   - Claimer: adoption of matching orphans and release of owned objects that
//     stopped matching, through ownerReference patches.
//   - RunWorkers: the worker loop that syncs a rate-limited queue's keys;
//     Run: a controller's Run around it, once the caches have synced.
//   - Event handler pieces: registration, tombstones, controller
//     references, selectors.
//   - ControllerRevision history of DaemonSets and StatefulSets, as
//     pkg/controller/history: the template patch a revision stores, the
//     next revision number, claiming revisions and creating one with
//     hash-collision detection.
//
// Everything here talks to the API only through what the caller passes in,
// so it works the same against the real API server and client-go's fake.
package controllerutil
