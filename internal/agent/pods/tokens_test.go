package pods

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestTokenCache(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	client := fake.NewClientset()
	issued, failing := 0, false
	var last *authenticationv1.TokenRequest
	client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		if failing {
			return true, nil, errors.New("API down")
		}
		issued++
		tr := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		last = tr
		tr.Status = authenticationv1.TokenRequestStatus{
			Token:               fmt.Sprintf("t%d", issued),
			ExpirationTimestamp: metav1.NewTime(clk.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second)),
		}
		return true, tr, nil
	})
	c := newTokenCache(client, clk)
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "u1"}, Spec: v1.PodSpec{ServiceAccountName: "builder"}}
	hour := &v1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3600)}
	vault := &v1.ServiceAccountTokenProjection{Path: "vault", Audience: "vault", ExpirationSeconds: ptr.To[int64](3600)}
	ctx := context.Background()
	get := func(p *v1.ServiceAccountTokenProjection) string {
		t.Helper()
		tok, err := c.token(ctx, pod, p)
		if err != nil {
			t.Fatal(err)
		}
		return string(tok)
	}

	steps := []struct {
		name    string
		advance time.Duration
		fail    bool
		proj    *v1.ServiceAccountTokenProjection
		want    string
		wantErr bool
	}{
		{name: "first request", proj: hour, want: "t1"},
		{name: "cached", advance: 10 * time.Minute, proj: hour, want: "t1"},
		{name: "another audience is another token", proj: vault, want: "t2"},
		{name: "renewed after 80% of its life", advance: 40 * time.Minute, proj: hour, want: "t3"},
		{name: "API down: the valid token is kept", advance: 50 * time.Minute, fail: true, proj: hour, want: "t3"},
		{name: "API down and the token expired", advance: 20 * time.Minute, fail: true, proj: hour, wantErr: true},
		{name: "API back", proj: hour, want: "t4"},
	}
	for _, s := range steps {
		clk.Step(s.advance)
		failing = s.fail
		tok, err := c.token(ctx, pod, s.proj)
		if s.wantErr {
			if err == nil {
				t.Fatalf("%s: got token %q, want an error", s.name, tok)
			}
			continue
		}
		if err != nil || string(tok) != s.want {
			t.Fatalf("%s: token %q, %v; want %q", s.name, tok, err, s.want)
		}
	}
	ref := last.Spec.BoundObjectRef
	if ref == nil || ref.Kind != "Pod" || ref.Name != "web" || ref.UID != "u1" || len(last.Spec.Audiences) != 0 {
		t.Errorf("token request %+v: want one bound to the pod with the API's audience", last.Spec)
	}
	if a, ok := client.Actions()[len(client.Actions())-1].(k8stesting.CreateActionImpl); !ok || a.GetNamespace() != "ns" || a.Name != "builder" {
		t.Errorf("last action %#v: want a token of ns/builder", a)
	}
	c.forget("u1")
	if got := get(hour); got != "t5" {
		t.Errorf("after forget: %q, want a new token", got)
	}
}
