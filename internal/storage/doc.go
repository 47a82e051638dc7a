// Package storage keeps API objects in etcd, one key per object, and serves
// reads and watches from an in-memory cache fed by a single etcd watch.
//
// An object's resourceVersion is the etcd revision that last modified it.
// Writes go straight to etcd as compare-and-swap transactions on the key's
// mod revision; reads wait until the cache has seen the latest revision, so
// a client always reads its own writes. Keys look like
// /registry/<group>/<resource>/[<namespace>/]<name>.
package storage
