package ingress

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
)

var (
	notFoundPage = page(http.StatusNotFound, "no Ingress rule matches this host and path")
	startingPage = page(http.StatusServiceUnavailable, "the ingress controller is starting")
	redirectPage = page(http.StatusPermanentRedirect, "this site is served over HTTPS")
)

// Handler returns the HTTP side of the proxy as net/http serves it (the
// fast path's fallback); requests that came over TLS are forwarded as
// https ones.
func (p *Proxy) Handler() http.Handler {
	return http.HandlerFunc(p.serveHTTP)
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	a := p.answer(r, connTLS(r) != nil)
	if a.backend != nil {
		a.backend.proxy.ServeHTTP(w, r)
		return
	}
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	writePage(w, a.code, a.page)
}

// answer is what a request gets, on either path: a backend with
// endpoints to proxy to, or one of the proxy's pages.
type answer struct {
	backend  *backend
	code     int
	page     []byte
	location string // of a redirect
}

// answer routes r by the current table; viaTLS: r came over HTTPS.
func (p *Proxy) answer(r *http.Request, viaTLS bool) answer {
	t := p.table.Load()
	if t == nil {
		return answer{code: http.StatusServiceUnavailable, page: startingPage}
	}
	host := normalizeHost(r.Host)
	rt := t.lookup(host, cleanPath(r.URL.Path))
	switch {
	case rt == nil:
		return answer{code: http.StatusNotFound, page: notFoundPage}
	case rt.redirect && !viaTLS:
		// 308 keeps the method and body.
		return answer{code: http.StatusPermanentRedirect, page: redirectPage, location: p.redirectURL(host, r)}
	case rt.backend.proxy == nil:
		return answer{code: http.StatusServiceUnavailable, page: rt.backend.unavailable}
	}
	return answer{backend: rt.backend}
}

// redirectURL is where a plain HTTP request to host goes over HTTPS,
// keeping its path and query.
func (p *Proxy) redirectURL(host string, r *http.Request) string {
	if port := p.cfg.HTTPSPort; port != 0 && port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return "https://" + host + r.URL.RequestURI()
}

// page is a small HTML error page: the status and one sentence, no
// details of the failure.
func page(code int, msg string) []byte {
	text := http.StatusText(code)
	return fmt.Appendf(nil, "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n<body><h1>%d %s</h1>\n<p>%s</p>\n<hr><p>wharf ingress</p></body></html>\n",
		code, text, code, text, html.EscapeString(msg))
}

// pageHeader are the fields of every page, but its length.
var pageHeader = [][2]string{
	{"Content-Type", "text/html; charset=utf-8"},
	{"Cache-Control", "no-store"},
	{"X-Content-Type-Options", "nosniff"},
}

func writePage(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	for _, f := range pageHeader {
		h.Set(f[0], f[1])
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do
}
