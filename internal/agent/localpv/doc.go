// Package localpv is the agent's built-in dynamic provisioner
// wharf.dev/local: for every claim that the scheduler (or a user) put on
// this node through the volume.kubernetes.io/selected-node annotation, it
// creates a volume of the requested size under the agent's state dir and a
// local PersistentVolume pinned to the node, which the binding controller
// binds to the claim. It also grows volumes when their claims grow (on
// classes that allow it) and deletes the data of Released volumes whose
// reclaim policy is Delete.
//
// Capacity is enforced: each volume is its own ext4 filesystem in a
// preallocated image file on a loop device (Disk), so a full volume gives
// the application ENOSPC while the host keeps its space. docs/storage-local.md
// says why this mechanism and what it costs.
//
// Volumes are named after their claim's UID (pvc-<uid>, the PV's name too),
// so a provisioner killed half way finds its work again: on start it
// removes volumes that have neither a PV nor a pending claim, and mounts
// the others again.
package localpv
