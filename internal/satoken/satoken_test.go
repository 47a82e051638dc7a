package satoken

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newIssuer(t *testing.T, name string) *Issuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	i, err := New(name, k)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestIssueVerify(t *testing.T) {
	iss := newIssuer(t, DefaultIssuer)
	other := newIssuer(t, DefaultIssuer)
	otherName := newIssuer(t, "https://elsewhere")
	otherName.key = iss.key
	base := Request{
		Namespace: "ns", ServiceAccount: Ref{Name: "sa", UID: "u1"},
		Pod: &Ref{Name: "p", UID: "u2"}, Audiences: []string{DefaultIssuer}, Lifetime: time.Hour,
	}
	sign := func(i *Issuer, r Request) string {
		tok, exp, err := i.Issue(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := exp.Sub(i.now()); got < r.Lifetime-time.Second || got > r.Lifetime {
			t.Fatalf("expiry in %v, want %v", got, r.Lifetime)
		}
		return tok
	}
	// A token signed HS256 with the public key as secret: the classic
	// algorithm confusion must not verify.
	der, _ := x509.MarshalPKIXPublicKey(&iss.key.PublicKey)
	confused, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: DefaultIssuer, Subject: "system:serviceaccount:ns:sa",
			Audience: []string{DefaultIssuer}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
		Kubernetes: Kubernetes{Namespace: "ns", ServiceAccount: Ref{"sa", "u1"}},
	}).SignedString(der)
	expired := newIssuer(t, DefaultIssuer)
	expired.key = iss.key
	expired.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	good := sign(iss, base)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]

	for _, tc := range []struct {
		name      string
		token     string
		audiences []string
		wantErr   string
	}{
		{"valid", good, []string{DefaultIssuer}, ""},
		{"one of several audiences", good, []string{"other", DefaultIssuer}, ""},
		{"wrong audience", good, []string{"vault"}, "audiences"},
		{"other key", sign(other, base), []string{DefaultIssuer}, "signature"},
		{"other issuer", sign(otherName, base), []string{DefaultIssuer}, "iss"},
		{"expired", sign(expired, base), []string{DefaultIssuer}, "expired"},
		{"tampered", tampered, []string{DefaultIssuer}, "token"},
		{"HS256 with the public key", confused, []string{DefaultIssuer}, "signing method"},
		{"not a token", "abc", []string{DefaultIssuer}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := iss.Verify(tc.token, tc.audiences)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			k := c.Kubernetes
			if c.Subject != "system:serviceaccount:ns:sa" || k.Namespace != "ns" || k.ServiceAccount != base.ServiceAccount ||
				k.Pod == nil || *k.Pod != *base.Pod || k.Secret != nil || c.ID == "" {
				t.Fatalf("claims %+v", c)
			}
		})
	}
	if !LooksLikeToken(good) || LooksLikeToken("0123456789abcdef") {
		t.Error("LooksLikeToken tells tokens apart wrongly")
	}
}

func TestIssueRefusesIncompleteRequests(t *testing.T) {
	iss := newIssuer(t, DefaultIssuer)
	for name, r := range map[string]Request{
		"no uid":        {Namespace: "ns", ServiceAccount: Ref{Name: "sa"}, Lifetime: time.Hour},
		"no namespace":  {ServiceAccount: Ref{Name: "sa", UID: "u"}, Lifetime: time.Hour},
		"bound to both": {Namespace: "ns", ServiceAccount: Ref{"sa", "u"}, Pod: &Ref{"p", "1"}, Secret: &Ref{"s", "2"}, Lifetime: time.Hour},
	} {
		if _, _, err := iss.Issue(r); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
}

func TestSplitUsername(t *testing.T) {
	for _, tc := range []struct {
		in       string
		ns, name string
		ok       bool
	}{
		{"system:serviceaccount:default:builder", "default", "builder", true},
		{Username("kube-system", "x"), "kube-system", "x", true},
		{"system:serviceaccount:default", "", "", false},
		{"system:serviceaccount::x", "", "", false},
		{"system:serviceaccount:a:b:c", "", "", false},
		{"admin", "", "", false},
	} {
		ns, name, ok := SplitUsername(tc.in)
		if ok != tc.ok || (ok && (ns != tc.ns || name != tc.name)) {
			t.Errorf("SplitUsername(%q) = %q, %q, %v", tc.in, ns, name, ok)
		}
	}
}

// TestVerifyRemembersUntilExpiry: a remembered token still expires.
func TestVerifyRemembersUntilExpiry(t *testing.T) {
	iss := newIssuer(t, DefaultIssuer)
	now := time.Now()
	iss.now = func() time.Time { return now }
	tok, _, err := iss.Issue(Request{Namespace: "ns", ServiceAccount: Ref{"sa", "u"}, Audiences: []string{DefaultIssuer}, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		advance time.Duration
		ok      bool
	}{{0, true}, {30 * time.Minute, true}, {31 * time.Minute, false}} {
		now = now.Add(step.advance)
		if _, err := iss.Verify(tok, []string{DefaultIssuer}); (err == nil) != step.ok {
			t.Fatalf("after %v: %v, want valid %v", step.advance, err, step.ok)
		}
	}
}

// BenchmarkVerify is what every request with a service account token pays
// before the API server looks up what the token names: the signature is
// checked once, then the token is remembered.
func BenchmarkVerify(b *testing.B) {
	benchmarkVerify(b, func(i *Issuer, tok string) error { _, err := i.Verify(tok, []string{DefaultIssuer}); return err })
}

// BenchmarkVerifySignature is the first request's cost.
func BenchmarkVerifySignature(b *testing.B) {
	benchmarkVerify(b, func(i *Issuer, tok string) error { _, err := i.verify(tok, []string{DefaultIssuer}); return err })
}

func benchmarkVerify(b *testing.B, verify func(*Issuer, string) error) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss, _ := New(DefaultIssuer, k)
	tok, _, err := iss.Issue(Request{Namespace: "ns", ServiceAccount: Ref{"sa", "u"}, Pod: &Ref{"p", "u2"}, Audiences: []string{DefaultIssuer}, Lifetime: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := verify(iss, tok); err != nil {
			b.Fatal(err)
		}
	}
}
