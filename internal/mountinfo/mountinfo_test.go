package mountinfo

import "testing"

func TestUnescapeMount(t *testing.T) {
	if got := unescape(`/tmp/a\040b\134c`); got != `/tmp/a b\c` {
		t.Errorf("unescape = %q", got)
	}
	paths := []string{"/s", "/s/a/b", "/s/a", "/s/c/d/e"}
	SortDeepestFirst(paths)
	if paths[0] != "/s/c/d/e" || paths[len(paths)-1] != "/s" {
		t.Errorf("deepest first: %v", paths)
	}
}

func TestRead(t *testing.T) {
	mounts, err := Read()
	if err != nil {
		t.Fatal(err)
	}
	root := false
	for _, m := range mounts {
		root = root || m.MountPoint == "/"
	}
	if !root {
		t.Errorf("no mount of / among %d mounts", len(mounts))
	}
}
