package cniplugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// agent answers one request per connection on a unix socket, as the
// agent's pod network does, and records the requests.
type agent struct {
	socket   string
	requests chan Request
}

func newAgent(t *testing.T, answer Response) *agent {
	t.Helper()
	a := &agent{socket: filepath.Join(t.TempDir(), "a.sock"), requests: make(chan Request, 10)}
	ln, err := net.Listen("unix", a.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			var req Request
			if json.NewDecoder(conn).Decode(&req) == nil {
				a.requests <- req
				json.NewEncoder(conn).Encode(answer)
			}
			conn.Close()
		}
	}()
	return a
}

func conf(typ, socket string) string {
	return `{"cniVersion":"1.0.0","name":"wharf","type":"` + typ + `","socket":"` + socket + `"}`
}

func env(cmd string) []string {
	return []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=abc", "CNI_NETNS=/run/netns/x", "CNI_IFNAME=eth0",
		"CNI_ARGS=K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p", "CNI_PATH=/opt/cni/bin"}
}

// runPlugin runs the plugin and returns what it printed and whether it failed.
func runPlugin(t *testing.T, env []string, stdin string) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	err := Run(env, strings.NewReader(stdin), &out)
	return out.String(), err != nil
}

func TestForwardsToTheAgent(t *testing.T) {
	result := json.RawMessage(`{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}`)
	a := newAgent(t, Response{Result: result})
	stdin := conf(Type, a.socket)
	for _, cmd := range []string{"ADD", "CHECK", "DEL"} {
		out, failed := runPlugin(t, env(cmd), stdin)
		if failed || out != string(result) {
			t.Errorf("%s: printed %q, failed %v; want the agent's result", cmd, out, failed)
		}
		got := <-a.requests
		want := Request{Command: cmd, ContainerID: "abc", NetNS: "/run/netns/x", IfName: "eth0",
			Args: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p", Config: json.RawMessage(stdin)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: request (-want +got):\n%s", cmd, diff)
		}
	}
}

func TestErrors(t *testing.T) {
	a := newAgent(t, Response{Error: &Error{Code: CodeAgent, Msg: "ADD abc", Details: "no free address"}})
	absent := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		name  string
		env   []string
		stdin string
		// wantCode 0: success with no output.
		wantCode uint
	}{
		{"agent's error", env("ADD"), conf(Type, a.socket), CodeAgent},
		{"no agent, ADD", env("ADD"), conf(Type, absent), CodeTryAgainLater},
		{"no agent, DEL skipped", env("DEL"), conf(Type, absent), 0},
		{"bad JSON", env("ADD"), "{", CodeDecodingFailure},
		{"old version", env("ADD"), `{"cniVersion":"0.2.0","type":"wharf"}`, CodeIncompatibleVersion},
		{"other type", env("ADD"), conf("bridge", a.socket), CodeInvalidConfig},
		{"no socket", env("ADD"), `{"cniVersion":"1.0.0","type":"wharf"}`, CodeInvalidConfig},
		{"no netns", append(env("ADD"), "CNI_NETNS="), conf(Type, a.socket), CodeInvalidEnvironment},
		{"unknown command", env("GC"), conf(Type, a.socket), CodeInvalidEnvironment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, failed := runPlugin(t, tc.env, tc.stdin)
			if tc.wantCode == 0 {
				if failed || out != "" {
					t.Errorf("printed %q, failed %v; want success, no output", out, failed)
				}
				return
			}
			var e Error
			if err := json.Unmarshal([]byte(out), &e); err != nil || !failed {
				t.Fatalf("printed %q, failed %v; want a CNI error", out, failed)
			}
			if e.Code != tc.wantCode || e.Msg == "" || e.CNIVersion == "" {
				t.Errorf("error %+v, want code %d", e, tc.wantCode)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, failed := runPlugin(t, []string{"CNI_COMMAND=VERSION"}, "")
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || failed || v.CNIVersion != "1.0.0" || len(v.SupportedVersions) != len(SupportedVersions) {
		t.Errorf("VERSION printed %q (%v)", out, err)
	}
}

// TestLoopback sets lo up in a new network namespace, as containerd asks
// for every sandbox (with CNI 0.3.1).
func TestLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	name := fmt.Sprintf("wharf-t-lo-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	path := "/var/run/netns/" + name
	e := append(env("ADD"), "CNI_NETNS="+path, "CNI_IFNAME=lo")
	out, failed := runPlugin(t, e, `{"cniVersion":"0.3.1","name":"cni-loopback","type":"loopback"}`)
	if failed {
		t.Fatalf("ADD: %s", out)
	}
	var res struct {
		CNIVersion string `json:"cniVersion"`
		Interfaces []struct{ Name, Sandbox string }
		IPs        []struct {
			Version, Address string
			Interface        int
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	if res.CNIVersion != "0.3.1" || len(res.Interfaces) != 1 || res.Interfaces[0].Name != "lo" || res.Interfaces[0].Sandbox != path ||
		len(res.IPs) != 1 || res.IPs[0].Address != "127.0.0.1/8" || res.IPs[0].Version != "4" {
		t.Errorf("result %s", out)
	}
	link, err := exec.Command("ip", "-n", name, "-o", "link", "show", "lo").CombinedOutput()
	if err != nil || !strings.Contains(string(link), "<LOOPBACK,UP,LOWER_UP>") {
		t.Errorf("lo after ADD: %s (%v)", link, err)
	}
	for _, cmd := range []string{"CHECK", "DEL"} {
		if out, failed := runPlugin(t, append(env(cmd), "CNI_NETNS="+path, "CNI_IFNAME=lo"), `{"cniVersion":"0.3.1","type":"loopback"}`); failed || out != "" {
			t.Errorf("%s: printed %q, failed %v", cmd, out, failed)
		}
	}
}
