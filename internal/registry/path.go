package registry

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// routeKind is what a URL under /v2/ addresses.
type routeKind int

const (
	routeBase     routeKind = iota // /v2/
	routeCatalog                   // /v2/_catalog
	routeTags                      // /v2/<name>/tags/list
	routeManifest                  // /v2/<name>/manifests/<tag or digest>
	routeBlob                      // /v2/<name>/blobs/<digest>
	routeUpload                    // /v2/<name>/blobs/uploads/[<id>]
)

type route struct {
	kind routeKind
	name string // repository
	ref  string // manifest tag or digest; blob digest
	id   string // upload id; empty for the POST that starts one
}

// The grammar of the distribution spec, which also keeps every name a
// safe relative path: no "..", no empty or absolute components.
var (
	nameRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	uploadRE = regexp.MustCompile(`^[a-f0-9]{32}$`)
)

const maxNameLength = 255

// parsePath maps a URL path to a route, validating every part of it.
// Repository names contain slashes, but tags, digests and upload ids do
// not, so the last two or three segments alone say what the path is.
func parsePath(p string) (route, error) {
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, errNotFound(p)
	}
	switch rest {
	case "":
		return route{kind: routeBase}, nil
	case "_catalog":
		return route{kind: routeCatalog}, nil
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	at := func(i int) string { // the i-th segment from the end, 1-based
		if i > n {
			return ""
		}
		return segs[n-i]
	}
	name := func(drop int) string { return strings.Join(segs[:max(n-drop, 0)], "/") }
	var r route
	switch {
	case at(2) == "manifests":
		r = route{kind: routeManifest, name: name(2), ref: at(1)}
		if err := checkReference(r.ref); err != nil {
			return route{}, err
		}
	case at(2) == "blobs" && at(1) == "uploads":
		r = route{kind: routeUpload, name: name(2)}
	case at(2) == "blobs":
		r = route{kind: routeBlob, name: name(2), ref: at(1)}
		if err := checkDigest(r.ref); err != nil {
			return route{}, err
		}
	case at(2) == "tags" && at(1) == "list":
		r = route{kind: routeTags, name: name(2)}
	case at(3) == "blobs" && at(2) == "uploads":
		r = route{kind: routeUpload, name: name(3), id: at(1)}
		if r.id != "" && !uploadRE.MatchString(r.id) {
			return route{}, newError(http.StatusNotFound, codeBlobUploadUnknown, "no upload %q", r.id)
		}
	default:
		return route{}, errNotFound(p)
	}
	if len(r.name) > maxNameLength || !nameRE.MatchString(r.name) {
		return route{}, newError(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q", r.name)
	}
	return r, nil
}

func checkReference(ref string) error {
	if strings.Contains(ref, ":") {
		return checkDigest(ref)
	}
	if !tagRE.MatchString(ref) {
		return newError(http.StatusBadRequest, codeTagInvalid, "invalid tag %q", ref)
	}
	return nil
}

// checkDigest accepts sha256 digests only: every client and runtime
// in the cluster uses them.
func checkDigest(d string) error {
	if !digestRE.MatchString(d) {
		return newError(http.StatusBadRequest, codeDigestInvalid, "invalid or unsupported digest %q (want sha256:<64 hex digits>)", d)
	}
	return nil
}

func isDigest(ref string) bool { return strings.HasPrefix(ref, "sha256:") }

func errNotFound(p string) error {
	return newError(http.StatusNotFound, codeUnsupported, "no such endpoint: %s", p)
}

// parseContentRange reads a chunk's "start-end" (inclusive; a "bytes="
// prefix is tolerated) and returns start and length.
func parseContentRange(s string) (start, length int64, err error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "bytes "), "bytes=")
	a, b, ok := strings.Cut(s, "-")
	if ok {
		start, err = strconv.ParseInt(a, 10, 64)
	}
	var end int64
	if ok && err == nil {
		end, err = strconv.ParseInt(b, 10, 64)
	}
	// end-start+1 overflows only for a range of 2^63 bytes: refused too.
	if !ok || err != nil || start < 0 || end < start || end-start+1 <= 0 {
		return 0, 0, fmt.Errorf("bad Content-Range %q", s)
	}
	return start, end - start + 1, nil
}
