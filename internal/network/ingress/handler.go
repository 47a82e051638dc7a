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
	t := p.table.Load()
	if t == nil {
		writePage(w, http.StatusServiceUnavailable, startingPage)
		return
	}
	host := normalizeHost(r.Host)
	rt := t.lookup(host, cleanPath(r.URL.Path))
	switch {
	case rt == nil:
		writePage(w, http.StatusNotFound, notFoundPage)
	case rt.redirect && connTLS(r) == nil:
		p.redirect(w, r, host)
	case rt.backend.proxy == nil:
		writePage(w, http.StatusServiceUnavailable, rt.backend.unavailable)
	default:
		rt.backend.proxy.ServeHTTP(w, r)
	}
}

// redirect sends a plain HTTP request to HTTPS, keeping its path and
// query; 308 keeps the method and body.
func (p *Proxy) redirect(w http.ResponseWriter, r *http.Request, host string) {
	w.Header().Set("Location", p.redirectURL(host, r))
	writePage(w, http.StatusPermanentRedirect, redirectPage)
}

// redirectURL is where a plain HTTP request to host goes over HTTPS.
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

func writePage(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(body) //nolint:errcheck // the client may be gone; nothing to do
}
