package ingress

import (
	"crypto/tls"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/types"
)

// table is one build's routing: immutable once stored, read without
// locks by every request and handshake.
type table struct {
	hosts     map[string]*hostRoutes // by exact host
	wildcards map[string]*hostRoutes // "*.example.test" by "example.test"
	catchAll  *hostRoutes            // rules without host; nil: none
	fallback  *route                 // the default backend; nil: 404

	certs         map[string]*tls.Certificate // by exact host
	wildcardCerts map[string]*tls.Certificate // by the part after "*."

	problems map[types.NamespacedName][]string
	// served are the Ingresses of ours, oldest first.
	served []types.NamespacedName
}

// hostRoutes are the paths of one host, merged across Ingresses.
type hostRoutes struct {
	exact    map[string]*route
	prefixes []prefixRoute // longest first
	fallback *route        // no path matches; nil: 404
}

// prefixRoute is a Prefix path without its trailing slash: "" is "/".
type prefixRoute struct {
	path  string
	route *route
}

// route is where a request goes.
type route struct {
	backend  *backend
	redirect bool // plain HTTP is redirected to HTTPS
}

// lookup finds the route of a normalised host and cleaned path; nil: none.
func (t *table) lookup(host, path string) *route {
	hr := t.hostRoutes(host)
	if hr == nil {
		return t.fallback
	}
	if r := hr.match(path); r != nil {
		return r
	}
	return hr.fallback
}

// hostRoutes are those of host: its own, else its wildcard's (one label),
// else those of the rules without host.
func (t *table) hostRoutes(host string) *hostRoutes {
	if hr := t.hosts[host]; hr != nil {
		return hr
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		if hr := t.wildcards[host[i+1:]]; hr != nil {
			return hr
		}
	}
	return t.catchAll
}

// match returns the longest matching path, Exact before Prefix at equal
// length: an Exact match is as long as the request's path, which no
// Prefix match exceeds.
func (hr *hostRoutes) match(p string) *route {
	if r := hr.exact[p]; r != nil {
		return r
	}
	for _, pr := range hr.prefixes {
		if prefixMatch(pr.path, p) {
			return pr.route
		}
	}
	return nil
}

// prefixMatch says whether a Prefix path (without trailing slash) matches
// p element-wise: "/foo" matches "/foo", "/foo/" and "/foo/bar", not
// "/foobar".
func prefixMatch(prefix, p string) bool {
	return strings.HasPrefix(p, prefix) && (len(p) == len(prefix) || p[len(prefix)] == '/')
}

// certificate returns the certificate for an SNI name: its own, else its
// wildcard's; nil: none.
func (t *table) certificate(name string) *tls.Certificate {
	if c := t.certs[name]; c != nil {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return t.wildcardCerts[name[i+1:]]
	}
	return nil
}

// normalizeHost turns a Host header (or SNI name) into the form rules are
// kept in: without port, without trailing dots, ASCII lower case. An
// IPv6 literal keeps its brackets. It allocates only for upper case.
func normalizeHost(h string) string {
	if len(h) > 0 && h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[:i+1]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 && strings.IndexByte(h[i+1:], ':') < 0 {
		h = h[:i]
	}
	h = strings.TrimRight(h, ".")
	for i := 0; i < len(h); i++ {
		if 'A' <= h[i] && h[i] <= 'Z' {
			return lowerASCII(h)
		}
	}
	return h
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// cleanPath is the path routes are matched on: absolute, without "//",
// "." or ".." elements (as nginx normalises before matching locations),
// a trailing slash kept. The request goes on with its own path.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	if !needsClean(p) {
		return p
	}
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c
}

func needsClean(p string) bool {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' || i+1 == len(p) {
			continue
		}
		switch rest := p[i+1:]; {
		case rest[0] == '/':
			return true
		case rest[0] == '.' && (len(rest) == 1 || rest[1] == '/'):
			return true
		case strings.HasPrefix(rest, "..") && (len(rest) == 2 || rest[2] == '/'):
			return true
		}
	}
	return false
}
