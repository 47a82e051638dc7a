package ingress

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// routeOf returns the service a request would go to, "404" if none, or
// "https" if it would be redirected.
func routeOf(p *Proxy, host, reqPath string, tls bool) string {
	rt := p.table.Load().lookup(normalizeHost(host), cleanPath(reqPath))
	switch {
	case rt == nil:
		return "404"
	case rt.redirect && !tls:
		return "https"
	}
	return rt.backend.name[len(ns)+1:]
}

// feed gives p the objects, then builds.
func feed(p *Proxy, objs ...any) {
	for _, o := range objs {
		switch o := o.(type) {
		case *networkingv1.Ingress:
			p.UpdateIngress(o)
		case *networkingv1.IngressClass:
			p.UpdateIngressClass(o)
		default:
			panic("feed: unexpected object")
		}
	}
	p.Sync()
}

func TestMatch(t *testing.T) {
	p := New(Config{})
	feed(p,
		newClass(ourClass, DefaultController, false),
		newIngress("a", 1,
			defaultBackend("default", 80),
			hostRule("a.test",
				pathTo(exact, "/exact", "exact", 80),
				pathTo(prefix, "/foo", "foo", 80),
				pathTo(exact, "/foo", "foo-exact", 80),
				pathTo(prefix, "/foo/bar/", "foobar", "http"),
				pathTo(implSp, "/impl", "impl", 80),
				pathTo(prefix, "/", "root", 80),
			),
			hostRule("*.wild.test", pathTo(prefix, "/", "wild", 80)),
			hostRule("exact.wild.test", pathTo(prefix, "/x", "exact-host", 80)),
			hostRule("", pathTo(prefix, "/any", "any", 80)),
			hostRule("nopaths.test"),
		),
		// Merged into a.test; its /foo loses to a's.
		newIngress("b", 2,
			hostRule("a.test", pathTo(prefix, "/b", "b", 80), pathTo(prefix, "/foo/", "loser", 80)),
			hostRule("B.Test", pathTo(exact, "/", "b-root", 80)),
		),
		// Has its own default backend for its host.
		newIngress("c", 3,
			defaultBackend("c-default", 80),
			hostRule("c.test", pathTo(prefix, "/c", "c", 80)),
		),
	)
	for _, tc := range []struct {
		host, path, want string
	}{
		{"a.test", "/exact", "exact"},
		{"a.test", "/exact/", "root"}, // Exact does not ignore a trailing slash
		{"a.test", "/exactly", "root"},
		{"a.test", "/foo", "foo-exact"}, // Exact beats Prefix at equal length
		{"a.test", "/foo/", "foo"},
		{"a.test", "/foobar", "root"}, // element-wise
		{"a.test", "/foo/x", "foo"},
		{"a.test", "/foo/bar", "foobar"}, // longest wins; the rule's trailing slash is ignored
		{"a.test", "/foo/bar/", "foobar"},
		{"a.test", "/foo/bar/baz", "foobar"},
		{"a.test", "/foo/barbaz", "foo"},
		{"a.test", "/impl/x", "impl"}, // ImplementationSpecific is Prefix
		{"a.test", "/", "root"},
		{"a.test", "", "root"},
		{"a.test", "/b/c", "b"}, // merged from Ingress b
		{"A.TEST:8080", "/foo/x", "foo"},
		{"a.test.", "/foo/x", "foo"},
		{"a.test", "/foo/../exact", "exact"}, // matched on the cleaned path
		{"a.test", "//foo//bar", "foobar"},
		{"a.test", "/foo/./bar", "foobar"},
		{"x.wild.test", "/anything", "wild"},
		{"X.Wild.Test", "/", "wild"},
		{"exact.wild.test", "/x", "exact-host"}, // an exact host before a wildcard
		{"exact.wild.test", "/y", "default"},    // no falling through to the wildcard
		{"wild.test", "/any", "any"},            // a wildcard needs a label
		{"y.x.wild.test", "/", "default"},       // and only one
		{"unknown.test", "/any/x", "any"},       // rules without host: every host
		{"unknown.test", "/other", "default"},   // then the default backend
		{"", "/any", "any"},
		{"nopaths.test", "/any", "default"}, // a host of its own, without paths
		{"b.test", "/", "b-root"},
		{"b.test", "/x", "default"},
		{"c.test", "/c", "c"},
		{"c.test", "/d", "c-default"}, // its Ingress's default backend
		{"[::1]:80", "/any", "any"},
	} {
		if got := routeOf(p, tc.host, tc.path, false); got != tc.want {
			t.Errorf("%s%s: got %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestMatchWithoutDefault(t *testing.T) {
	p := New(Config{})
	feed(p, newClass(ourClass, DefaultController, false),
		newIngress("a", 1, hostRule("a.test", pathTo(prefix, "/a", "a", 80))))
	for _, tc := range []struct{ host, path, want string }{
		{"a.test", "/a", "a"},
		{"a.test", "/b", "404"},
		{"b.test", "/a", "404"},
	} {
		if got := routeOf(p, tc.host, tc.path, false); got != tc.want {
			t.Errorf("%s%s: got %s, want %s", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestClassSelection(t *testing.T) {
	legacy := func(c string) ingOpt { return annotate(annotationLegacyClass, c) }
	ours := newClass(ourClass, DefaultController, false)
	oursDefault := newClass(ourClass, DefaultController, true)
	other := newClass("other", otherCtrl, false)
	otherDefault := newClass("other", otherCtrl, true)
	for _, tc := range []struct {
		name    string
		classes []any
		opts    []ingOpt
		want    bool
	}{
		{"named ours", []any{ours, other}, nil, true},
		{"named other", []any{ours, other}, []ingOpt{className("other")}, false},
		{"named missing", []any{ours}, []ingOpt{className("gone")}, false},
		{"no class, no default", []any{ours, otherDefault}, []ingOpt{className("")}, false},
		{"no class, ours default", []any{oursDefault, other}, []ingOpt{className("")}, true},
		{"legacy annotation ours", []any{ours}, []ingOpt{className(""), legacy(ourClass)}, true},
		{"legacy annotation other", []any{oursDefault, other}, []ingOpt{className(""), legacy("other")}, false},
		{"legacy annotation decides", []any{ours, other}, []ingOpt{className(ourClass), legacy("other")}, false},
		{"ours, then our class deleted", nil, nil, false},
		{"class taken over by another controller", []any{ours, newClass(ourClass, otherCtrl, false)}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(Config{})
			opts := append([]ingOpt{hostRule("h.test", pathTo(prefix, "/", "svc", 80))}, tc.opts...)
			if tc.classes == nil {
				feed(p, ours)
				p.DeleteIngressClass(ourClass)
			}
			feed(p, append(tc.classes, newIngress("i", 1, opts...))...)
			if got := routeOf(p, "h.test", "/", false) == "svc"; got != tc.want {
				t.Errorf("served: got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":               "/",
		"/":              "/",
		"a":              "/a",
		"/a/b/":          "/a/b/",
		"//a":            "/a",
		"/a/./b":         "/a/b",
		"/a/../b/":       "/b/",
		"/..":            "/",
		"/a/..":          "/",
		"/a/.":           "/a",
		"/.hidden/..x/":  "/.hidden/..x/",
		"/a/b/../../../": "/",
	} {
		if got := cleanPath(in); got != want {
			t.Errorf("cleanPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"a.test":         "a.test",
		"A.Test:8443":    "a.test",
		"a.test.":        "a.test",
		"a.test.:80":     "a.test",
		"[::1]:80":       "[::1]",
		"[::1]":          "[::1]",
		"::1":            "::1", // not a valid Host; left alone
		"":               "",
		"10.0.0.1:80":    "10.0.0.1",
		"ÄB.test":        "Äb.test", // ASCII only
		"xn--bcher-kva.": "xn--bcher-kva",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
}
