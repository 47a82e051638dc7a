//go:build integration

package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"wharf.dev/wharf/internal/testserver"
)

// TestUserCertificates: `wharf up config --user` hands a user a kubeconfig
// whose certificate the server signed; the real kubectl authenticates
// with it as that user in its groups, whom RBAC governs; and a request
// made by hand is approved and denied with kubectl certificate, as on
// any Kubernetes cluster.
func TestUserCertificates(t *testing.T) {
	state := t.TempDir()
	srv := startServer(t, filepath.Join(state, "server"), "127.0.0.1:0")
	for _, minor := range []string{"28", "33"} { // auth whoami is v1 since 1.28
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			admin := testserver.NewKubectl(t, minor, srv.kubeconfig())
			user := "alice-" + minor
			file := filepath.Join(t.TempDir(), user+".kubeconfig")
			out, err := exec.Command(wharfBin, "up", "config", "--state-dir", state, "--user", user, "--group", "devs-"+minor, "--group", "ops",
				"--output-file", file).CombinedOutput()
			if err != nil {
				t.Fatalf("wharf up config --user: %v\n%s", err, out)
			}
			alice := testserver.NewKubectl(t, minor, file)
			whoami := alice.Run("auth", "whoami")
			testserver.Contains(t, whoami, user, "devs-"+minor, "ops", "system:authenticated")
			testserver.Contains(t, alice.Run("config", "current-context"), "wharf-"+user)
			no, _ := alice.Cmd("", "auth", "can-i", "list", "pods").CombinedOutput()
			testserver.Contains(t, string(no), "no")
			denied, err := alice.Cmd("", "get", "pods").CombinedOutput()
			if err == nil {
				t.Errorf("%s listed pods without a binding:\n%s", user, denied)
			}
			testserver.Contains(t, string(denied), fmt.Sprintf(`User %q cannot list resource "pods"`, user))

			admin.Run("create", "rolebinding", "devs-view-"+minor, "--clusterrole", "view", "--group", "devs-"+minor)
			t.Cleanup(func() { admin.Cmd("", "delete", "rolebinding", "devs-view-"+minor, "--ignore-not-found").Run() })
			alice.Eventually("yes", "auth", "can-i", "list", "pods")
			alice.Run("get", "pods")
			no, _ = alice.Cmd("", "auth", "can-i", "get", "secrets").CombinedOutput()
			testserver.Contains(t, string(no), "no")
			// She may not approve requests, her own or anyone's.
			no, _ = alice.Cmd("", "auth", "can-i", "update", "certificatesigningrequests/approval").CombinedOutput()
			testserver.Contains(t, string(no), "no")

			// kubectl get csr prints upstream's columns.
			list := admin.Run("get", "csr")
			if !regexp.MustCompile(`(?m)^NAME\s+AGE\s+SIGNERNAME\s+REQUESTOR\s+REQUESTEDDURATION\s+CONDITION\s*$`).MatchString(list) {
				t.Errorf("kubectl get csr headers:\n%s", list)
			}
			if !regexp.MustCompile(`(?m)^wharf-user-` + user + `-\S+\s+\S+\s+kubernetes.io/kube-apiserver-client\s+admin\s+365d\s+Approved,Issued\s*$`).MatchString(list) {
				t.Errorf("kubectl get csr lacks %s's issued request:\n%s", user, list)
			}

			// A request made by hand, approved and denied with kubectl.
			bob, bobKey := handRequest(t, "bob-"+minor, "testers")
			admin.RunIn(csrManifest("bob-"+minor, bob), "create", "-f", "-")
			testserver.Contains(t, admin.Run("get", "csr", "bob-"+minor), "Pending")
			testserver.Contains(t, admin.Run("certificate", "approve", "bob-"+minor),
				"certificatesigningrequest.certificates.k8s.io/bob-"+minor+" approved")
			admin.Eventually("Approved,Issued", "get", "csr", "bob-"+minor)
			cert, err := base64.StdEncoding.DecodeString(admin.Run("get", "csr", "bob-"+minor, "-o", "jsonpath={.status.certificate}"))
			if err != nil {
				t.Fatal(err)
			}
			bobFile := userKubeconfig(t, srv.kubeconfig(), "bob", cert, bobKey)
			testserver.Contains(t, testserver.NewKubectl(t, minor, bobFile).Run("auth", "whoami"), "bob-"+minor, "testers")

			carol, _ := handRequest(t, "carol-"+minor)
			admin.RunIn(csrManifest("carol-"+minor, carol), "create", "-f", "-")
			testserver.Contains(t, admin.Run("certificate", "deny", "carol-"+minor), "denied")
			testserver.Contains(t, admin.Run("get", "csr", "carol-"+minor), "Denied")
			if c := admin.Run("get", "csr", "carol-"+minor, "-o", "jsonpath={.status.certificate}"); c != "" {
				t.Errorf("a denied request got a certificate")
			}
			// A client certificate in system:masters is never requested.
			masters, _ := handRequest(t, "eve-"+minor, "system:masters")
			refused, err := admin.Cmd(csrManifest("eve-"+minor, masters), "create", "-f", "-").CombinedOutput()
			if err == nil {
				t.Errorf("a system:masters request was created:\n%s", refused)
			}
			testserver.Contains(t, string(refused), "system:masters group is not allowed")
		})
	}
}

// handRequest is a PEM certificate request of a new key for cn in orgs,
// and the key, as openssl req would make them.
func handRequest(t *testing.T, cn string, orgs ...string) (csrPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn, Organization: orgs}}, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func csrManifest(name string, request []byte) string {
	return fmt.Sprintf(`apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: %s
spec:
  request: %s
  signerName: kubernetes.io/kube-apiserver-client
  expirationSeconds: 86400
  usages:
  - client auth
`, name, base64.StdEncoding.EncodeToString(request))
}

// userKubeconfig is the admin's kubeconfig with the user's certificate
// and key instead of the admin's token.
func userKubeconfig(t *testing.T, adminFile, user string, cert, key []byte) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(adminFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{user: {ClientCertificateData: cert, ClientKeyData: key}}
	ctx.AuthInfo = user
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "token") {
		t.Fatalf("the user's kubeconfig kept a token:\n%s", data)
	}
	return path
}
