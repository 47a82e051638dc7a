package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/testserver"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(context.Background(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	if err != nil {
		t.Logf("wharf %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), err
}

// TestImagePushList pushes the pause image to a real control plane's
// registry as an admin and lists it back; a node may pull but not push.
func TestImagePushList(t *testing.T) {
	s := testserver.Start(t)
	// Built with the package, not `wharf image build`: the command sets
	// klog's global logger, which the in-process server is using.
	built, err := images.Build(context.Background(), testserver.Logger(t), images.BuildOptions{OutDir: t.TempDir(), Only: []string{"pause"}})
	if err != nil {
		t.Fatal(err)
	}
	tarball, digest := built[0].Path, built[0].Digest.String()

	out, err := runCLI(t, "image", "push", "--kubeconfig", s.AdminKubeconfig, tarball)
	if err != nil {
		t.Fatal(err)
	}
	if want := "pushed " + tarball + " as " + images.PauseImage + "@" + digest + "\n"; out != want {
		t.Errorf("push printed %q, want %q", out, want)
	}
	if _, err := runCLI(t, "image", "push", "--kubeconfig", s.AdminKubeconfig, "--name", "other/pause:v2", tarball); err != nil {
		t.Fatal(err)
	}

	out, err = runCLI(t, "image", "list", "--kubeconfig", s.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		rows = append(rows, f[:3]) // sizes vary with the Go release
	}
	want := [][]string{{"REPOSITORY", "TAG", "DIGEST"}, {"other/pause", "v2", digest}, {"wharf/pause", "v1", digest}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("list (-want +got):\n%s\n%s", diff, out)
	}

	t.Run("nodes pull, do not push", func(t *testing.T) {
		node := nodeRemote(t, s)
		if _, err := node.List(context.Background()); err != nil {
			t.Errorf("node list: %v", err)
		}
		img, _ := random.Image(64, 1)
		target, _ := node.Target("wharf/forbidden:v1")
		if _, err := node.Push(context.Background(), images.Named{Image: img}, target); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
			t.Errorf("node push: %v, want UNAUTHORIZED", err)
		}
	})
}

// nodeRemote reaches the registry with the join token's secret, which
// authenticates as a member of system:nodes.
func nodeRemote(t *testing.T, s *testserver.Server) images.Remote {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", s.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.BearerToken = s.JoinToken[strings.LastIndex(s.JoinToken, ".")+1:]
	rt, err := rest.TransportFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	return images.Remote{Host: strings.TrimPrefix(rc.Host, "https://"), Transport: rt}
}
