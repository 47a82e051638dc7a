package apiserver

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// User is an authenticated caller.
type User struct {
	Name   string
	Groups []string
	// Extra is what else the authenticator knows (a service account
	// token's pod), as upstream's user.Info.
	Extra map[string][]string
}

// Authenticator returns the user making a request, or false.
type Authenticator func(r *http.Request) (*User, bool)

// TokenAuthenticator authenticates "Authorization: Bearer <token>" against a fixed set.
func TokenAuthenticator(tokens map[string]User) Authenticator {
	type entry struct {
		token []byte
		user  User
	}
	entries := make([]entry, 0, len(tokens))
	for t, u := range tokens {
		entries = append(entries, entry{[]byte(t), u})
	}
	return func(r *http.Request) (*User, bool) {
		h := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || tok == "" {
			return nil, false
		}
		// Compare with every token in constant time, so timing does not tell
		// how much of a guess was right.
		var found *User
		for i := range entries {
			if subtle.ConstantTimeCompare(entries[i].token, []byte(tok)) == 1 {
				found = &entries[i].user
			}
		}
		return found, found != nil
	}
}

type userKey struct{}

// UserFrom returns the user a request was authenticated as.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok
}

func (s *Server) withAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Health checks (load balancers and supervisors hold no
		// credentials) and public routes answer without authentication.
		if s.public[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		var u *User
		ok := false
		if s.authenticate != nil {
			u, ok = s.authenticate(r)
		}
		if !ok {
			s.metrics.observe("", "unauthorized", http.StatusUnauthorized, 0)
			s.writeError(w, r, apierrors.NewUnauthorized("Unauthorized"), nil)
			return
		}
		ctx := r.Context()
		if !s.routed(r) {
			var err error
			if u, err = s.impersonate(ctx, u, r); err == nil {
				err = s.authorize(ctx, userInfo(u), r)
			}
			if err != nil {
				s.metrics.observe("", "forbidden", http.StatusForbidden, 0)
				s.writeError(w, r, err, nil)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, userKey{}, u)))
	})
}

// CertificateAuthenticator authenticates a client certificate the TLS
// handshake verified (against the server's client CAs) as kube-apiserver
// does: the subject's common name is the user, its organizations the groups.
func CertificateAuthenticator(r *http.Request) (*User, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, false
	}
	subject := r.TLS.VerifiedChains[0][0].Subject
	if subject.CommonName == "" {
		return nil, false
	}
	return &User{Name: subject.CommonName, Groups: subject.Organization}, true
}

// Authenticators tries each authenticator in turn.
func Authenticators(as ...Authenticator) Authenticator {
	return func(r *http.Request) (*User, bool) {
		for _, a := range as {
			if a == nil {
				continue
			}
			if u, ok := a(r); ok {
				return u, true
			}
		}
		return nil, false
	}
}
