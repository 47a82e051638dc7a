package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/testserver"
)

// wharf up config prints the admin's kubeconfig of a state dir's cluster,
// or a user's, signed by that cluster. No root needed: the server runs
// here as wharf up would run it, with its data in <state-dir>/server.
func TestUpConfig(t *testing.T) {
	stateDir := t.TempDir()
	s := testserver.Start(t, func(o *controlplane.Options) { o.DataDir = filepath.Join(stateDir, "server") })

	out, err := runCLI(t, "up", "config", "--state-dir", stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := os.ReadFile(s.AdminKubeconfig); out != string(want) {
		t.Errorf("without --user: not the admin's kubeconfig:\n%s", out)
	}

	out, err = runCLI(t, "up", "config", "--state-dir", stateDir, "--user", "bob", "--group", "ops")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "wharf-bob" || cfg.AuthInfos["wharf-bob"] == nil || len(cfg.AuthInfos["wharf-bob"].ClientCertificateData) == 0 {
		t.Fatalf("kubeconfig: current context %q, users %v", cfg.CurrentContext, cfg.AuthInfos)
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	review, err := kubernetes.NewForConfigOrDie(rc).AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != "bob" || !slices.Contains(u.Groups, "ops") {
		t.Errorf("whoami: %+v, want bob in ops", u)
	}

	missing := filepath.Join(t.TempDir(), "none")
	if _, err := runCLI(t, "up", "config", "--state-dir", missing, "--user", "bob"); err == nil || !strings.Contains(err.Error(), "no cluster in "+missing) {
		t.Errorf("a state dir without a cluster: %v", err)
	}
}
