package cni

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestConflist(t *testing.T) {
	data, err := Conflist(Options{PodCIDR: "10.244.1.7/24", Socket: "/s/cni/wharf.sock"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	json.Unmarshal([]byte(`{
	  "cniVersion": "1.0.0",
	  "name": "wharf",
	  "plugins": [{
	    "type": "wharf", "socket": "/s/cni/wharf.sock", "bridge": "wharf0", "subnet": "10.244.1.0/24",
	    "capabilities": {"portMappings": true}
	  }]
	}`), &want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conflist (-want +got):\n%s", diff)
	}
}

func TestConflistRejects(t *testing.T) {
	for name, opts := range map[string]Options{
		"no CIDR":         {Socket: "/s"},
		"bad CIDR":        {PodCIDR: "10.244.1.0", Socket: "/s"},
		"relative socket": {PodCIDR: "10.244.1.0/24", Socket: "wharf.sock"},
		"long bridge":     {PodCIDR: "10.244.1.0/24", Socket: "/s", Bridge: "a-very-long-bridge"},
		"no socket":       {PodCIDR: "10.244.1.0/24"},
	} {
		if _, err := Conflist(opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestWriteConflistOnlyWhenChanged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d")
	opts := Options{PodCIDR: "10.244.1.0/24", Socket: "/s/cni/wharf.sock"}
	for i, want := range []bool{true, false} {
		changed, err := WriteConflist(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if changed != want {
			t.Errorf("write %d: changed = %v, want %v", i, changed, want)
		}
	}
	opts.PodCIDR = "10.244.2.0/24"
	if changed, err := WriteConflist(dir, opts); err != nil || !changed {
		t.Errorf("new CIDR: changed = %v, %v", changed, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != ConflistFile {
		t.Errorf("directory holds %v, want only %s", entries, ConflistFile)
	}
}

// ReadConflist gives back the bridge, pod CIDR and socket that WriteConflist
// wrote, and nothing for a directory without a conflist or with a broken
// one.
func TestReadConflist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net.d")
	if got := ReadConflist(dir); got != (Options{}) {
		t.Errorf("no conflist: %+v, want nothing", got)
	}
	if _, err := WriteConflist(dir, Options{PodCIDR: "10.244.1.0/24", Socket: "/s/cni/wharf.sock"}); err != nil {
		t.Fatal(err)
	}
	if got, want := ReadConflist(dir), (Options{PodCIDR: "10.244.1.0/24", Bridge: DefaultBridge, Socket: "/s/cni/wharf.sock"}); got != want {
		t.Errorf("ReadConflist = %+v, want %+v", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, ConflistFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ReadConflist(dir); got != (Options{}) {
		t.Errorf("broken conflist: %+v, want nothing", got)
	}
}
