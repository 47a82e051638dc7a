package coe

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/wire"
)

func TestCreate(t *testing.T) {
	tests := []struct {
		name  string
		nodes int32
	}{
		{"c2", 2},
		{"c0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.start()
			e.createCluster(tt.name, tt.nodes)
			cl := e.waitStatus(tt.name, wharfv1.StatusCreateComplete)

			var steps []string
			for _, s := range cl.Status.Steps {
				steps = append(steps, s.Name)
			}
			want := []string{stepCredentials, stepMasterHosts, stepControlPlane, stepWorkerHosts, stepNodesReady}
			if diff := cmp.Diff(want, steps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			ref := provider.ClusterRef{Namespace: ns, Name: tt.name, UID: string(cl.UID)}
			hosts, _ := e.prov.ListHosts(e.ctx, ref)
			if len(hosts) != int(tt.nodes)+1 {
				t.Fatalf("hosts %+v, want %d", hosts, tt.nodes+1)
			}
			master := hosts[0]
			st := cl.Status
			if st.APIAddress != fmt.Sprintf("https://%s:%d", master.Address, apiPort) || !slices.Equal(st.MasterAddresses, []string{master.Address}) {
				t.Errorf("apiAddress %q, masterAddresses %q; master %s", st.APIAddress, st.MasterAddresses, master.Address)
			}
			if len(st.NodeAddresses) != int(tt.nodes) || st.COEVersion != controlplane.Version.GitVersion {
				t.Errorf("nodeAddresses %q, coeVersion %q", st.NodeAddresses, st.COEVersion)
			}
			if tt.nodes > 0 && st.ContainerVersion != simRuntimeVersion {
				t.Errorf("containerVersion %q, want %q", st.ContainerVersion, simRuntimeVersion)
			}
			if st.HealthStatus != wharfv1.HealthHealthy || st.HealthStatusReason["api"] != "ok" || st.StatusReason != "" || len(st.Faults) != 0 {
				t.Errorf("health %s %v, reason %q, faults %v", st.HealthStatus, st.HealthStatusReason, st.StatusReason, st.Faults)
			}
			if !slices.Contains(cl.Finalizers, Finalizer) {
				t.Errorf("finalizers %v lack %s", cl.Finalizers, Finalizer)
			}

			nodes, err := e.kube(cl).CoreV1().Nodes().List(e.ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, n := range nodes.Items {
				names = append(names, n.Name)
				if !nodeReady(&n) || n.Labels[LabelNodeGroup] != tt.name+"-default-worker" {
					t.Errorf("node %s: ready %v, labels %v", n.Name, nodeReady(&n), n.Labels)
				}
			}
			var wantNodes []string
			for i := range int(tt.nodes) {
				wantNodes = append(wantNodes, fmt.Sprintf("%s-node-%d", tt.name, i))
			}
			if !slices.Equal(names, wantNodes) {
				t.Errorf("nodes %v, want %v", names, wantNodes)
			}
			for g, want := range map[string][]string{tt.name + "-default-master": {tt.name + "-master-0"}, tt.name + "-default-worker": wantNodes} {
				ng := e.group(g)
				if ng.Status.Status != wharfv1.StatusCreateComplete || !slices.Equal(ng.Status.Nodes, want) || !metav1.IsControlledBy(ng, cl) {
					t.Errorf("node group %s: status %+v owners %v, want nodes %v", g, ng.Status, ng.OwnerReferences, want)
				}
			}
			s, err := e.svc.Client.CoreV1().Secrets(ns).Get(e.ctx, credentialsName(tt.name), metav1.GetOptions{})
			if err != nil || !metav1.IsControlledBy(s, cl) {
				t.Errorf("credentials secret: %v, owners %v", err, s.OwnerReferences)
			}
			if _, err := e.svc.Client.CoreV1().Secrets(wire.NodeTokenNamespace).Get(e.ctx, pullTokenName(cl.UID), metav1.GetOptions{}); err != nil {
				t.Errorf("pull token: %v", err)
			}
			checkSpecs(t, e, cl, hosts)
		})
	}
}

// checkSpecs compares what the hosts run with docs/service.md.
func checkSpecs(t *testing.T, e *testEnv, cl *wharfv1.Cluster, hosts []provider.Host) {
	ref := hosts[0].Cluster
	for _, h := range hosts {
		spec, _ := e.prov.Spec(ref, h.Name)
		var want []string
		var files []string
		if h.Role == provider.RoleMaster {
			want = []string{"server", "--data-dir", h.StateDir + "/server", "--listen", fmt.Sprintf("%s:%d", h.Address, apiPort),
				"--advertise-address", h.Address, "--cluster-cidr", wire.DefaultClusterCIDR, "--service-cidr", wire.DefaultServiceCIDR}
			files = []string{"server/pki/ca.crt", "server/pki/ca.key", "server/pki/service-account.key", "server/tokens.json"}
		} else {
			cr, _ := parseCredentialsOf(t, e, cl)
			want = []string{"agent", "--server", cl.Status.APIAddress, "--token", cr.joinToken, "--state-dir", h.StateDir + "/agent",
				"--node-name", h.Name, "--node-ip", h.Address, "--cgroup-root", "/wharf/" + ref.Key() + "/" + h.Name,
				"--cluster-cidr", wire.DefaultClusterCIDR, "--service-cidr", wire.DefaultServiceCIDR,
				"--registry-url", "https://" + e.prov.ServiceAddress() + ":7443",
				"--registry-ca-file", h.StateDir + "/registry/ca.crt", "--registry-token-file", h.StateDir + "/registry/token"}
			files = []string{fileRegistryCA, fileRegistryToken}
		}
		if diff := cmp.Diff(want, spec.Args); diff != "" {
			t.Errorf("host %s: args (-want +got):\n%s", h.Name, diff)
		}
		var got []string
		for f := range spec.Files {
			got = append(got, f)
		}
		slices.Sort(got)
		if !slices.Equal(got, files) {
			t.Errorf("host %s: files %v, want %v", h.Name, got, files)
		}
	}
}

func parseCredentialsOf(t *testing.T, e *testEnv, cl *wharfv1.Cluster) (*credentials, *corev1.Secret) {
	s, err := e.svc.Client.CoreV1().Secrets(ns).Get(e.ctx, credentialsName(cl.Name), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := parseCredentials(s.Data)
	if err != nil {
		t.Fatal(err)
	}
	return cr, s
}
