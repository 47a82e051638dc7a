package ingress

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

func FuzzHost(f *testing.F) {
	for _, s := range []string{"a.test", "A.TEST:80", "x.w.test", "x.W.test.:443", "[::1]:80", "w.test", "a.b.w.test", ".w.test", "", ":", "[", "a:b:c"} {
		f.Add(s)
	}
	p := New(Config{})
	feed(p, newClass(ourClass, DefaultController, false),
		newIngress("i", 1, defaultBackend("default", 80),
			hostRule("a.test", pathTo(prefix, "/", "a", 80)),
			hostRule("*.w.test", pathTo(prefix, "/", "w", 80))))
	f.Fuzz(func(t *testing.T, h string) {
		n := normalizeHost(h)
		if normalizeHost(n) != n {
			t.Errorf("normalizeHost(%q) = %q is not normalised", h, n)
		}
		if strings.ToLower(n) != n && lowerASCII(n) != n {
			t.Errorf("normalizeHost(%q) = %q has upper case", h, n)
		}
		if strings.HasSuffix(n, ".") {
			t.Errorf("normalizeHost(%q) = %q ends with a dot", h, n)
		}
		if !strings.ContainsAny(h, ":[") && normalizeHost(h+":8080") != n {
			t.Errorf("the port changes %q", h)
		}
		// Reference: the exact host, a wildcard of one label, else the
		// default backend.
		want := "default"
		if label, ok := strings.CutSuffix(n, ".w.test"); n == "a.test" {
			want = "a"
		} else if ok && label != "" && !strings.Contains(label, ".") {
			want = "w"
		}
		if got := routeOf(p, h, "/", false); got != want {
			t.Errorf("Host %q goes to %s, want %s", h, got, want)
		}
	})
}

func FuzzPath(f *testing.F) {
	f.Add("/foo", true, "/foo/", false, "/foo")
	f.Add("/foo", false, "/foo/bar", false, "/foo/bar/baz")
	f.Add("/", false, "/a", true, "/a/")
	f.Add("/a/b", false, "/a", false, "/a/b/../c")
	f.Add("/x", false, "/x/", false, "//x")
	f.Fuzz(func(t *testing.T, rule1 string, exact1 bool, rule2 string, exact2 bool, raw string) {
		req := cleanPath(raw)
		if req[0] != '/' || cleanPath(req) != req || needsClean(req) {
			t.Fatalf("cleanPath(%q) = %q is not clean", raw, req)
		}
		typ := func(exact bool) networkingv1.PathType {
			if exact {
				return networkingv1.PathTypeExact
			}
			return networkingv1.PathTypePrefix
		}
		p := New(Config{})
		feed(p, newClass(ourClass, DefaultController, false),
			newIngress("i", 1, hostRule("h.test", pathTo(typ(exact1), rule1, "r1", 80), pathTo(typ(exact2), rule2, "r2", 80))))
		// Reference: the element-wise definition, longest rule first,
		// Exact before Prefix, the first rule before the second.
		want, bestLen, bestExact := "404", -1, false
		for _, r := range []struct {
			path, name string
			exact      bool
		}{{rule1, "r1", exact1}, {rule2, "r2", exact2}} {
			if !strings.HasPrefix(r.path, "/") || needsClean(r.path) {
				continue // refused, with a problem
			}
			ok, n := refMatch(r.path, r.exact, req)
			if ok && (n > bestLen || n == bestLen && r.exact && !bestExact) {
				want, bestLen, bestExact = r.name, n, r.exact
			}
		}
		if got := routeOf(p, "h.test", raw, false); got != want {
			t.Errorf("rules %q (exact %v), %q (exact %v): %q (%q) goes to %s, want %s", rule1, exact1, rule2, exact2, raw, req, got, want)
		}
	})
}

// refMatch matches a request path on a rule as the Ingress documentation
// says, splitting both into elements; it returns the length that ranks
// the match.
func refMatch(rule string, exact bool, req string) (bool, int) {
	if exact {
		return rule == req, len(rule)
	}
	elems := func(p string) []string {
		e := strings.Split(strings.TrimPrefix(p, "/"), "/")
		if e[len(e)-1] == "" {
			e = e[:len(e)-1] // a trailing slash is ignored
		}
		return e
	}
	r, q := elems(rule), elems(req)
	if len(r) > len(q) {
		return false, 0
	}
	for i := range r {
		if r[i] != q[i] {
			return false, 0
		}
	}
	return true, len(strings.TrimRight(rule, "/"))
}
