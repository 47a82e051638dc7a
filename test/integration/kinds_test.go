//go:build integration

package integration

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"wharf.dev/wharf/internal/testserver"
)

// kindCheck is what kubectl get prints for one kind of testdata/kinds.yaml.
type kindCheck struct {
	resource string   // plural, possibly group-qualified
	names    []string // short names that must work too
	object   string   // the manifest's object
	headers  string   // the header line, columns separated by two or more spaces
	wide     string   // extra headers of -o wide
	created  string   // what apply prints
}

var kindChecks = []kindCheck{
	{resource: "jobs", object: "pi", headers: "NAME STATUS COMPLETIONS DURATION AGE", wide: "CONTAINERS IMAGES SELECTOR", created: "job.batch/pi"},
	{resource: "cronjobs", names: []string{"cj", "cronjob.batch"}, object: "backup", headers: "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
		wide: "CONTAINERS IMAGES SELECTOR", created: "cronjob.batch/backup"},
	{resource: "horizontalpodautoscalers", names: []string{"hpa"}, object: "web", headers: "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE",
		created: "horizontalpodautoscaler.autoscaling/web"},
	{resource: "poddisruptionbudgets", names: []string{"pdb"}, object: "web", headers: "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE",
		created: "poddisruptionbudget.policy/web"},
	{resource: "networkpolicies", names: []string{"netpol"}, object: "db", headers: "NAME POD-SELECTOR AGE", created: "networkpolicy.networking.k8s.io/db"},
	{resource: "storageclasses", names: []string{"sc"}, object: "wharf-test-local",
		headers: "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE", created: "storageclass.storage.k8s.io/wharf-test-local"},
	{resource: "csidrivers", object: "test.csi.wharf.dev",
		headers: "NAME ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS REQUIRESREPUBLISH MODES AGE", created: "csidriver.storage.k8s.io/test.csi.wharf.dev"},
	{resource: "volumeattachments", object: "wharf-test-attachment", headers: "NAME ATTACHER PV NODE ATTACHED AGE",
		created: "volumeattachment.storage.k8s.io/wharf-test-attachment"},
	{resource: "persistentvolumes", names: []string{"pv"}, object: "wharf-test-pv",
		headers: "NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE", wide: "VOLUMEMODE",
		created: "persistentvolume/wharf-test-pv"},
	{resource: "persistentvolumeclaims", names: []string{"pvc"}, object: "data",
		headers: "NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE", wide: "VOLUMEMODE", created: "persistentvolumeclaim/data"},
	{resource: "roles", object: "pod-reader", headers: "NAME CREATED AT", created: "role.rbac.authorization.k8s.io/pod-reader"},
	{resource: "clusterroles", object: "wharf-test:aggregate", headers: "NAME CREATED AT", created: "clusterrole.rbac.authorization.k8s.io/wharf-test:aggregate"},
	{resource: "rolebindings", object: "read-pods", headers: "NAME ROLE AGE", wide: "USERS GROUPS SERVICEACCOUNTS",
		created: "rolebinding.rbac.authorization.k8s.io/read-pods"},
	{resource: "clusterrolebindings", object: "wharf-test:aggregate", headers: "NAME ROLE AGE", wide: "USERS GROUPS SERVICEACCOUNTS",
		created: "clusterrolebinding.rbac.authorization.k8s.io/wharf-test:aggregate"},
	{resource: "validatingwebhookconfigurations", object: "wharf-test", headers: "NAME WEBHOOKS AGE",
		created: "validatingwebhookconfiguration.admissionregistration.k8s.io/wharf-test"},
	{resource: "mutatingwebhookconfigurations", object: "wharf-test", headers: "NAME WEBHOOKS AGE",
		created: "mutatingwebhookconfiguration.admissionregistration.k8s.io/wharf-test"},
	{resource: "validatingadmissionpolicies", object: "wharf-test-replicas", headers: "NAME VALIDATIONS PARAMKIND AGE",
		created: "validatingadmissionpolicy.admissionregistration.k8s.io/wharf-test-replicas"},
	{resource: "validatingadmissionpolicybindings", object: "wharf-test-replicas", headers: "NAME POLICYNAME PARAMREF AGE",
		created: "validatingadmissionpolicybinding.admissionregistration.k8s.io/wharf-test-replicas"},
}

// TestAPIKinds applies one object of each kind with every kubectl release
// installed from 1.27 to 1.33, reads them back as kubectl prints them,
// applies a changed manifest (client-side apply's strategic merge patch),
// is refused invalid objects with the field named, and deletes them all.
func TestAPIKinds(t *testing.T) {
	manifest, err := os.ReadFile("testdata/kinds.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, minor := range []string{"27", "28", "29", "30", "31", "32", "33"} {
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			testserver.Kubectl(t, minor) // skips before starting a server when not installed
			srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			kindsSession(t, k, string(manifest))
		})
	}
}

func kindsSession(t *testing.T, k *testserver.KubectlRunner, manifest string) {
	out := k.RunIn(manifest, "apply", "-f", "-")
	for _, c := range kindChecks {
		testserver.Contains(t, out, c.created+" created")
	}

	for _, c := range kindChecks {
		for _, name := range append([]string{c.resource}, c.names...) {
			out := k.Run("get", name)
			checkHeaders(t, "get "+name, out, c.headers)
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(c.object) + `\s`).MatchString(out) {
				t.Errorf("get %s does not list %s:\n%s", name, c.object, out)
			}
		}
		if c.wide != "" {
			checkHeaders(t, "get -o wide "+c.resource, k.Run("get", c.resource, "-o", "wide"), c.headers+" "+c.wide)
		}
	}
	// Cells worth a look: what defaulting filled in and kubectl shows.
	testserver.Contains(t, k.Run("get", "cj", "backup"), "*/5 * * * *", "Europe/Paris", "False")
	testserver.Contains(t, k.Run("get", "hpa", "web"), "Deployment/web", "cpu: <unknown>/70%")
	testserver.Contains(t, k.Run("get", "pvc", "data"), "Pending", "wharf-test-local")
	testserver.Contains(t, k.Run("get", "sc"), "test.csi.wharf.dev", "Delete", "WaitForFirstConsumer")
	testserver.Contains(t, k.Run("get", "rolebinding", "read-pods", "-o", "wide"), "Role/pod-reader", "jane", "/default")
	testserver.Contains(t, k.Run("get", "job", "pi", "-o", "jsonpath={.spec.selector.matchLabels}"), "batch.kubernetes.io/controller-uid")

	all := k.Run("get", "all")
	testserver.Contains(t, all, "job.batch/pi", "cronjob.batch/backup", "horizontalpodautoscaler.autoscaling/web")
	for _, notAll := range []string{"poddisruptionbudget", "persistentvolumeclaim", "networkpolicy"} {
		if strings.Contains(all, notAll) {
			t.Errorf("get all lists %s:\n%s", notAll, all)
		}
	}

	// A second apply patches each object: labels everywhere, a few values.
	changed := strings.NewReplacer(
		`rev: "1"`, `rev: "2"`,
		"maxReplicas: 5", "maxReplicas: 8",
		`schedule: "*/5 * * * *"`, `schedule: "@hourly"`,
		"minAvailable: 1", "minAvailable: 2",
	).Replace(manifest)
	out = k.RunIn(changed, "apply", "-f", "-")
	for _, c := range kindChecks {
		testserver.Contains(t, out, c.created+" configured")
	}
	testserver.Contains(t, k.Run("get", "hpa", "web"), "8")
	testserver.Contains(t, k.Run("get", "cj", "backup"), "@hourly")
	testserver.Contains(t, k.Run("get", "pdb", "web", "-o", "jsonpath={.spec.minAvailable}"), "2")
	testserver.Contains(t, k.Run("get", "job", "pi", "-o", "jsonpath={.metadata.labels.rev}"), "2")
	testserver.Contains(t, k.RunIn(changed, "apply", "-f", "-"), "job.batch/pi unchanged")

	// Invalid objects are refused with the field named.
	for _, bad := range []struct{ manifest, field string }{
		{strings.Replace(kindDoc(t, manifest, "CronJob"), `"*/5 * * * *"`, `"every minute"`, 1), "spec.schedule"},
		{strings.Replace(kindDoc(t, manifest, "PersistentVolumeClaim"), "accessModes: [ReadWriteOnce]", "accessModes: []", 1), "spec.accessModes"},
		{strings.Replace(kindDoc(t, manifest, "ClusterRoleBinding"), ", namespace: default}", "}", 1), "subjects[1].namespace"},
		{strings.Replace(kindDoc(t, manifest, "StorageClass"), "test.csi.wharf.dev", "example.com/other", 1), "provisioner"},
		{strings.Replace(kindDoc(t, manifest, "PodDisruptionBudget"), "minAvailable: 1", "minAvailable: 1\n  maxUnavailable: 1", 1), "minAvailable and maxUnavailable"},
	} {
		out, err := k.Cmd(bad.manifest, "apply", "-f", "-").CombinedOutput()
		if err == nil || !strings.Contains(string(out), bad.field) {
			t.Errorf("invalid object accepted or the error does not name %s: %v\n%s", bad.field, err, out)
		}
	}

	out = k.RunIn(changed, "delete", "-f", "-")
	for _, c := range kindChecks {
		kind, name, _ := strings.Cut(c.created, "/")
		testserver.Contains(t, out, kind+` "`+name+`" deleted`)
	}
	for _, c := range kindChecks {
		if out, err := k.Cmd("", "get", c.resource, c.object).CombinedOutput(); err == nil || !strings.Contains(string(out), "NotFound") {
			t.Errorf("%s %s still there after delete: %v\n%s", c.resource, c.object, err, out)
		}
	}
}

// kindDoc returns the manifest's document of one kind.
func kindDoc(t *testing.T, manifest, kind string) string {
	t.Helper()
	for _, doc := range strings.Split(manifest, "\n---\n") {
		if strings.Contains(doc, "\nkind: "+kind+"\n") {
			return doc
		}
	}
	t.Fatalf("no %s in the manifest", kind)
	return ""
}

// checkHeaders compares kubectl's header line with want, a space-separated
// list in which multi-word headers ("LAST SCHEDULE") are single-spaced.
func checkHeaders(t *testing.T, what, out, want string) {
	t.Helper()
	header, _, _ := strings.Cut(out, "\n")
	got := strings.Join(regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(header), -1), " ")
	if got != want {
		t.Errorf("%s headers\n got %q\nwant %q\n%s", what, got, want, out)
	}
}

// TestAPIKindsDiscovery checks that kubectl api-resources lists the new
// resources with their group version, short names and scope.
func TestAPIKindsDiscovery(t *testing.T) {
	srv := startServer(t, t.TempDir()+"/server", "127.0.0.1:0")
	for _, minor := range []string{"27", "33"} {
		t.Run("kubectl-1."+minor, func(t *testing.T) {
			k := testserver.NewKubectl(t, minor, srv.kubeconfig())
			out := k.Run("api-resources")
			for _, want := range []string{
				`jobs\s+batch/v1\s+true\s+Job`,
				`cronjobs\s+cj\s+batch/v1\s+true\s+CronJob`,
				`horizontalpodautoscalers\s+hpa\s+autoscaling/v2\s+true\s+HorizontalPodAutoscaler`,
				// The same events in two groups, as upstream (short name and all).
				`events\s+ev\s+v1\s+true\s+Event`,
				`events\s+ev\s+events.k8s.io/v1\s+true\s+Event`,
				`poddisruptionbudgets\s+pdb\s+policy/v1\s+true\s+PodDisruptionBudget`,
				`networkpolicies\s+netpol\s+networking.k8s.io/v1\s+true\s+NetworkPolicy`,
				`storageclasses\s+sc\s+storage.k8s.io/v1\s+false\s+StorageClass`,
				`csidrivers\s+storage.k8s.io/v1\s+false\s+CSIDriver`,
				`volumeattachments\s+storage.k8s.io/v1\s+false\s+VolumeAttachment`,
				`persistentvolumes\s+pv\s+v1\s+false\s+PersistentVolume`,
				`persistentvolumeclaims\s+pvc\s+v1\s+true\s+PersistentVolumeClaim`,
				`roles\s+rbac.authorization.k8s.io/v1\s+true\s+Role`,
				`clusterroles\s+rbac.authorization.k8s.io/v1\s+false\s+ClusterRole`,
				`rolebindings\s+rbac.authorization.k8s.io/v1\s+true\s+RoleBinding`,
				`clusterrolebindings\s+rbac.authorization.k8s.io/v1\s+false\s+ClusterRoleBinding`,
				`validatingwebhookconfigurations\s+admissionregistration.k8s.io/v1\s+false\s+ValidatingWebhookConfiguration`,
				`mutatingwebhookconfigurations\s+admissionregistration.k8s.io/v1\s+false\s+MutatingWebhookConfiguration`,
				`validatingadmissionpolicies\s+admissionregistration.k8s.io/v1\s+false\s+ValidatingAdmissionPolicy`,
				`validatingadmissionpolicybindings\s+admissionregistration.k8s.io/v1\s+false\s+ValidatingAdmissionPolicyBinding`,
				`certificatesigningrequests\s+csr\s+certificates.k8s.io/v1\s+false\s+CertificateSigningRequest`,
			} {
				if !regexp.MustCompile(`(?m)^` + want + `\s*$`).MatchString(out) {
					t.Errorf("api-resources lacks %s:\n%s", want, out)
				}
			}
			// Autoscalers are served in autoscaling/v2, the preferred
			// version api-resources shows, and in v1.
			testserver.Contains(t, k.Run("api-versions"), "autoscaling/v2", "autoscaling/v1", "batch/v1", "policy/v1", "storage.k8s.io/v1",
				"rbac.authorization.k8s.io/v1", "admissionregistration.k8s.io/v1", "events.k8s.io/v1", "certificates.k8s.io/v1")
			testserver.Contains(t, k.Run("api-resources", "--categories", "all"), "jobs", "cronjobs", "horizontalpodautoscalers")
		})
	}
}
