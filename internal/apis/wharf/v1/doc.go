// Package v1 is the wharf.dev/v1 API of the cluster service: cluster
// templates, clusters and node groups, the objects `wharf cluster` manages
// the way `openstack coe cluster` manages Magnum's. hack/update-codegen.sh
// writes zz_generated.deepcopy.go from these types.
//
// +k8s:deepcopy-gen=package
// +groupName=wharf.dev
package v1
