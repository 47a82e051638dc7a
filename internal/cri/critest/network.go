package critest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// webServer serves "hello from <hostname>" on port 8080 with busybox httpd.
var webServer = []string{"sh", "-c",
	`mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 8080 -h /www`}

// TestPodNetwork: pods get addresses in the pod CIDR, answer from the
// host, and reach each other.
func TestPodNetwork(t *testing.T, env *Env) {
	if env.Network == nil {
		t.Skip("the runtime sets up no pod network")
	}
	ctx := testContext(t)
	a := newPod(t, env, "web-a", nil)
	b := newPod(t, env, "web-b", nil)
	a.start(t, "web", webServer)
	bc := b.start(t, "web", webServer)

	ip := func(p *pod) netip.Addr {
		t.Helper()
		st, err := env.Runtime.PodSandboxStatus(ctx, p.id, false)
		if err != nil {
			t.Fatal(err)
		}
		addr, err := netip.ParseAddr(st.Status.GetNetwork().GetIp())
		if err != nil {
			t.Fatalf("pod %s: address: %v", p.name, err)
		}
		if !env.Network.CIDR.Contains(addr) {
			t.Errorf("pod %s: address %s outside %s", p.name, addr, env.Network.CIDR)
		}
		return addr
	}
	ipA, ipB := ip(a), ip(b)
	if ipA == ipB {
		t.Fatalf("both pods have %s", ipA)
	}
	t.Logf("pod addresses %s, %s", ipA, ipB)

	client := &http.Client{
		Transport: &http.Transport{DialContext: env.Network.Dial, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
	for _, tc := range []struct {
		name string
		ip   netip.Addr
	}{{"web-a", ipA}, {"web-b", ipB}} {
		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(tc.ip, 8080))
		eventually(t, "host to "+tc.name, 30*time.Second, func() error {
			body, err := get(ctx, client, url)
			if err != nil {
				return err
			}
			if want := "hello from " + tc.name; body != want {
				return fmt.Errorf("GET %s = %q, want %q", url, body, want)
			}
			return nil
		})
	}

	if env.Exec {
		url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(ipA, 8080))
		// No wget -T: Debian's busybox-static 1.35 wget segfaults with it;
		// the exec timeout bounds the request instead.
		out, _, err := env.Runtime.ExecSync(ctx, bc, []string{"wget", "-q", "-O", "-", url}, 15*time.Second)
		if err != nil || strings.TrimSpace(string(out)) != "hello from web-a" {
			t.Errorf("web-b to web-a: %q, %v", out, err)
		}
	}
}

func get(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(body)), err
}
