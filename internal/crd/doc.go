// Package crd is what a CustomResourceDefinition means to the API server,
// built from k8s.io/apiextensions-apiserver rather than rewritten: the
// definition's own defaulting, validation and status (names accepted,
// established), and, for one version of it, everything the generic
// handlers need to serve its objects as *unstructured.Unstructured:
// pruning, defaulting, schema, list-type, metadata and CEL validation,
// the /status and /scale subresources, printer columns, selectable
// fields, the OpenAPI schema kubectl explain reads and the type
// converter server-side apply merges with.
//
// Each piece is upstream's own function, called the way upstream's
// customresource_handler.go and registry strategies call it, so that
// objects are accepted, refused (with the same field paths and
// messages) and shaped exactly as on a Kubernetes API server.
package crd
