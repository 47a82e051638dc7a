package ingress

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// snapshot is what a build reads: copies of the maps, whose values are
// never modified.
type snapshot struct {
	ingresses map[types.NamespacedName]*ingress
	classes   map[string]*class
	services  map[types.NamespacedName]*service
	slices    map[types.NamespacedName]*slice
	secrets   map[types.NamespacedName]*secret
}

// ours says whether an Ingress is served here: the legacy annotation,
// when present, decides alone (as in ingress-nginx); else the class it
// names; else whether one of our classes is the default.
func (s *snapshot) ours(ing *ingress) bool {
	switch {
	case ing.legacyClass != nil:
		return s.classes[*ing.legacyClass] != nil
	case ing.className != nil:
		return s.classes[*ing.className] != nil
	}
	for _, c := range s.classes {
		if c.isDefault {
			return true
		}
	}
	return false
}

// builder makes one table. Ingresses are taken oldest first (then by
// namespace/name): on a conflict the older one wins, and the problems
// come out in the same order every time.
type builder struct {
	p        *Proxy
	s        snapshot
	t        *table
	bySvc    map[types.NamespacedName][]*slice
	backends map[backendKey]*resolved
	routes   map[routeKey]claim // who routes each host and path
	certs    map[string]claim   // who supplies each host's certificate
	hostDefs map[string]claim   // who supplies each host's default backend
	defOwner types.NamespacedName
}

type backendKey struct {
	svc      types.NamespacedName
	port     int32
	portName string
	h2c      bool
}

type resolved struct {
	b       *backend
	problem string
}

type routeKey struct {
	host  string
	exact bool
	path  string
}

type claim struct {
	ing    types.NamespacedName
	b      *backend
	secret types.NamespacedName
}

func (p *Proxy) build(s snapshot) *table {
	b := &builder{
		p: p,
		s: s,
		t: &table{
			hosts:         map[string]*hostRoutes{},
			wildcards:     map[string]*hostRoutes{},
			certs:         map[string]*tls.Certificate{},
			wildcardCerts: map[string]*tls.Certificate{},
			problems:      map[types.NamespacedName][]string{},
		},
		bySvc:    map[types.NamespacedName][]*slice{},
		backends: map[backendKey]*resolved{},
		routes:   map[routeKey]claim{},
		certs:    map[string]claim{},
		hostDefs: map[string]claim{},
	}
	for k, sl := range s.slices {
		svc := types.NamespacedName{Namespace: k.Namespace, Name: sl.service}
		b.bySvc[svc] = append(b.bySvc[svc], sl)
	}
	keys := make([]types.NamespacedName, 0, len(s.ingresses))
	for k, ing := range s.ingresses {
		if s.ours(ing) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, c types.NamespacedName) int {
		return cmp.Or(s.ingresses[a].created.Compare(s.ingresses[c].created),
			cmp.Compare(a.Namespace, c.Namespace), cmp.Compare(a.Name, c.Name))
	})
	for _, k := range keys {
		b.add(k, s.ingresses[k])
	}
	b.t.served = keys
	for _, hr := range b.allHosts() {
		slices.SortFunc(hr.prefixes, func(a, c prefixRoute) int {
			return cmp.Or(cmp.Compare(len(c.path), len(a.path)), cmp.Compare(a.path, c.path))
		})
		if hr.fallback == nil {
			hr.fallback = b.t.fallback
		}
	}
	return b.t
}

func (b *builder) allHosts() []*hostRoutes {
	var all []*hostRoutes
	for _, hr := range b.t.hosts {
		all = append(all, hr)
	}
	for _, hr := range b.t.wildcards {
		all = append(all, hr)
	}
	if b.t.catchAll != nil {
		all = append(all, b.t.catchAll)
	}
	return all
}

func (b *builder) problem(ing types.NamespacedName, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(b.t.problems[ing], msg) {
		b.t.problems[ing] = append(b.t.problems[ing], msg)
	}
}

// add merges one Ingress into the table.
func (b *builder) add(key types.NamespacedName, ing *ingress) {
	h2c := false
	switch strings.ToLower(ing.backendProtocol) {
	case "", "http":
	case "h2c":
		h2c = true
	default:
		b.problem(key, "annotation %s: %q is not one of http, h2c", annotationBackendProtocol, ing.backendProtocol)
	}
	redirect := false
	if ing.sslRedirect != "" {
		v, err := strconv.ParseBool(ing.sslRedirect)
		if err != nil {
			b.problem(key, "annotation %s: %q is not a boolean", annotationSSLRedirect, ing.sslRedirect)
		}
		redirect = v
	}
	tlsHosts := b.addTLS(key, ing)

	var def *backend
	if ing.defaultBackend != nil {
		if def = b.backend(key, ing.defaultBackend, h2c); def != nil {
			switch {
			case b.t.fallback == nil:
				b.t.fallback, b.defOwner = &route{backend: def}, key
			case b.t.fallback.backend != def:
				b.problem(key, "default backend ignored: Ingress %q sets one already", b.defOwner.String())
			}
		}
	}
	for _, r := range ing.rules {
		host, ok := b.checkHost(key, r.host)
		if !ok {
			continue
		}
		hr := b.hostRoutes(host)
		if def != nil && host != "" {
			switch c, ok := b.hostDefs[host]; {
			case !ok:
				b.hostDefs[host] = claim{ing: key, b: def}
				hr.fallback = &route{backend: def, redirect: redirect && tlsHosts[host]}
			case c.b != def:
				b.problem(key, "default backend for host %q ignored: Ingress %q sets one already", host, c.ing.String())
			}
		}
		for _, pr := range r.paths {
			b.addPath(key, host, hr, pr, h2c, redirect && host != "" && tlsHosts[host])
		}
	}
}

func (b *builder) addPath(key types.NamespacedName, host string, hr *hostRoutes, pr pathRule, h2c, redirect bool) {
	p, exact, ok := b.checkPath(key, pr)
	if !ok {
		return
	}
	be := b.backend(key, &pr.backend, h2c)
	if be == nil {
		return
	}
	rk := routeKey{host: host, exact: exact, path: p}
	if c, ok := b.routes[rk]; ok {
		switch {
		case c.b == be:
		case c.ing == key:
			b.problem(key, "path %q (%s) of %s appears twice; the first one is used", pr.path, pr.typ, describeHost(host))
		default:
			b.problem(key, "path %q (%s) of %s is routed by Ingress %q already", pr.path, pr.typ, describeHost(host), c.ing.String())
		}
		return
	}
	b.routes[rk] = claim{ing: key, b: be}
	rt := &route{backend: be, redirect: redirect}
	if exact {
		if hr.exact == nil {
			hr.exact = map[string]*route{}
		}
		hr.exact[p] = rt
	} else {
		hr.prefixes = append(hr.prefixes, prefixRoute{path: p, route: rt})
	}
}

func describeHost(host string) string {
	if host == "" {
		return "any host"
	}
	return "host " + strconv.Quote(host)
}

func (b *builder) hostRoutes(host string) *hostRoutes {
	m := b.t.hosts
	switch {
	case host == "":
		if b.t.catchAll == nil {
			b.t.catchAll = &hostRoutes{}
		}
		return b.t.catchAll
	case strings.HasPrefix(host, "*."):
		m, host = b.t.wildcards, host[2:]
	}
	hr := m[host]
	if hr == nil {
		hr = &hostRoutes{}
		m[host] = hr
	}
	return hr
}

// checkHost returns a rule's or TLS entry's host in table form, or
// reports why it cannot be used.
func (b *builder) checkHost(key types.NamespacedName, h string) (string, bool) {
	host := lowerASCII(h)
	name := strings.TrimPrefix(host, "*.")
	if strings.Contains(name, "*") {
		b.problem(key, "host %q: a wildcard must be the whole first label", h)
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			b.problem(key, "host %q is not a DNS name", h)
			return "", false
		}
	}
	if name == "" && host != "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") {
		b.problem(key, "host %q is not a DNS name", h)
		return "", false
	}
	return host, true
}

// checkPath returns a path in table form: an Exact one as is, a Prefix
// (or ImplementationSpecific) one without trailing slash.
func (b *builder) checkPath(key types.NamespacedName, pr pathRule) (string, bool, bool) {
	p := pr.path
	if p == "" && pr.typ == networkingv1.PathTypeImplementationSpecific {
		p = "/"
	}
	switch {
	case !strings.HasPrefix(p, "/"):
		b.problem(key, "path %q must begin with \"/\"", pr.path)
		return "", false, false
	case needsClean(p):
		b.problem(key, "path %q must not contain \"//\", \".\" or \"..\" elements", pr.path)
		return "", false, false
	}
	switch pr.typ {
	case networkingv1.PathTypeExact:
		return p, true, true
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		return strings.TrimRight(p, "/"), false, true
	}
	b.problem(key, "path %q: unknown pathType %q", pr.path, pr.typ)
	return "", false, false
}

// addTLS adds an Ingress's certificates and returns its TLS hosts. An
// entry without hosts covers the hosts of the Ingress's rules (there is
// no default server to give it to).
func (b *builder) addTLS(key types.NamespacedName, ing *ingress) map[string]bool {
	tlsHosts := map[string]bool{}
	for _, e := range ing.tls {
		hosts := e.hosts
		if len(hosts) == 0 {
			hosts = nil // a new slice: e is shared with other builds
			for _, r := range ing.rules {
				if r.host != "" {
					hosts = append(hosts, r.host)
				}
			}
		}
		var valid []string
		for _, h := range hosts {
			if host, ok := b.checkHost(key, h); ok && host != "" {
				valid = append(valid, host)
				tlsHosts[host] = true
			}
		}
		if e.secret == "" {
			b.problem(key, "TLS hosts %s have no secretName (there is no default certificate)", strings.Join(valid, ", "))
			continue
		}
		sk := types.NamespacedName{Namespace: key.Namespace, Name: e.secret}
		s := b.s.secrets[sk]
		switch {
		case s == nil:
			b.problem(key, "TLS secret %q not found", sk.String())
			continue
		case !s.isTLS:
			b.problem(key, "TLS secret %q is not of type kubernetes.io/tls", sk.String())
			continue
		case s.cert == nil:
			b.problem(key, "TLS secret %q: %s", sk.String(), s.err)
			continue
		}
		for _, host := range valid {
			if err := s.cert.Leaf.VerifyHostname(host); err != nil {
				b.problem(key, "TLS secret %q: its certificate is not valid for host %q", sk.String(), host)
			}
			switch c, ok := b.certs[host]; {
			case !ok:
				b.certs[host] = claim{ing: key, secret: sk}
				if rest, ok := strings.CutPrefix(host, "*."); ok {
					b.t.wildcardCerts[rest] = s.cert
				} else {
					b.t.certs[host] = s.cert
				}
			case c.secret != sk:
				b.problem(key, "TLS host %q: the certificate of Ingress %q (secret %q) is used", host, c.ing.String(), c.secret.String())
			}
		}
	}
	return tlsHosts
}

// backend returns the backend of a reference, resolved once per build;
// nil: none can be (reported).
func (b *builder) backend(key types.NamespacedName, ref *backendRef, h2c bool) *backend {
	switch {
	case ref.resource != "":
		b.problem(key, "resource backend %q is not supported", ref.resource)
		return nil
	case ref.service == "":
		b.problem(key, "a backend names no service")
		return nil
	}
	k := backendKey{svc: types.NamespacedName{Namespace: key.Namespace, Name: ref.service}, port: ref.port, portName: ref.portName, h2c: h2c}
	r := b.backends[k]
	if r == nil {
		r = b.resolve(k)
		b.backends[k] = r
	}
	if r.problem != "" {
		b.problem(key, "%s", r.problem)
	}
	return r.b
}

// resolve finds a service port's endpoints: the addresses of the
// service's slices, on the slice's port named as the service port.
func (b *builder) resolve(k backendKey) *resolved {
	name := k.svc.String()
	var transport http.RoundTripper = b.p.h1
	if k.h2c {
		transport = b.p.h2c
	}
	r := &resolved{}
	var addrs []string
	svc := b.s.services[k.svc]
	switch {
	case svc == nil:
		r.problem = fmt.Sprintf("service %q not found", name)
	case svc.externalName:
		r.problem = fmt.Sprintf("service %q is of type ExternalName, which is not supported", name)
	default:
		i := slices.IndexFunc(svc.ports, func(sp servicePort) bool {
			if k.portName != "" {
				return sp.name == k.portName
			}
			return sp.port == k.port
		})
		switch {
		case i < 0 && k.portName != "":
			r.problem = fmt.Sprintf("service %q has no port %q", name, k.portName)
		case i < 0:
			r.problem = fmt.Sprintf("service %q has no port %d", name, k.port)
		default:
			addrs = b.endpoints(k.svc, svc.ports[i].name)
		}
	}
	r.b = newBackend(name, addrs, transport, k.h2c, b.p.log, b.p.errLog)
	return r
}

func (b *builder) endpoints(svc types.NamespacedName, portName string) []string {
	seen := map[netip.AddrPort]bool{}
	var eps []netip.AddrPort
	for _, sl := range b.bySvc[svc] {
		i := slices.IndexFunc(sl.ports, func(sp servicePort) bool { return sp.name == portName })
		if i < 0 {
			continue
		}
		for _, a := range sl.addrs {
			ap := netip.AddrPortFrom(a, uint16(sl.ports[i].port))
			if !seen[ap] {
				seen[ap] = true
				eps = append(eps, ap)
			}
		}
	}
	slices.SortFunc(eps, netip.AddrPort.Compare)
	addrs := make([]string, len(eps))
	for i, ap := range eps {
		addrs[i] = ap.String()
	}
	return addrs
}
