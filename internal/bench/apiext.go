package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// APIExtConfig sizes the benchmarks of authorization, server-side apply
// and custom resources.
type APIExtConfig struct {
	// RBAC: Clients create pods for Duration, Rounds times on each
	// server, alternating, with Roles extra Roles and RoleBindings and
	// ClusterBindings extra ClusterRoleBindings stored.
	Clients         int
	Duration        time.Duration
	Rounds          int
	Roles           int
	ClusterBindings int
	// Apply: Writes applies and Writes updates of a ConfigMap of Fields keys.
	Writes int
	Fields int
	// Custom objects: Objects created by Clients clients, then listed Lists times.
	Objects int
	Lists   int
}

// row is one line of the summary table.
type row struct{ what, figure, goal string }

// APIExt measures, each side by side with its baseline, on `wharf server
// --disable-controllers` child processes: pod creates by a user that RBAC
// allows (client-go impersonation from the admin) against the same
// creates with authorization off; server-side apply against update of the
// same ConfigMap; and creating and listing many custom objects, with the
// server's memory.
func APIExt(ctx context.Context, env Env, out io.Writer, cfg APIExtConfig) error {
	var rows []row
	r, err := rbacCost(ctx, env, out, cfg)
	if err != nil {
		return fmt.Errorf("rbac: %w", err)
	}
	rows = append(rows, r...)
	r, err = applyCost(ctx, env, out, cfg)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	rows = append(rows, r...)
	r, err = customObjects(ctx, env, out, cfg)
	if err != nil {
		return fmt.Errorf("custom objects: %w", err)
	}
	rows = append(rows, r...)

	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tfigure (as the clients saw it)\tgoal")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.what, r.figure, r.goal)
	}
	return tw.Flush()
}

const benchUser = "bench"

// rbacCost compares pod creates by benchUser on a server authorizing with
// RBAC and on one with authorization off. Both servers hold the same
// extra policy and are reached the same way (the admin impersonating
// benchUser: with RBAC, one more authorization, of the admin, which
// system:masters settles first); they run in turn so that only one is busy.
func rbacCost(ctx context.Context, env Env, out io.Writer, cfg APIExtConfig) ([]row, error) {
	type side struct {
		name   string
		srv    *server
		user   kubernetes.Interface
		create Latencies
		n      atomic.Int64
		errs   atomic.Int64
		before histograms
	}
	sides := []*side{{name: "rbac"}, {name: "none"}}
	for _, s := range sides {
		srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "apiext-"+s.name), "--disable-controllers", "--authorization="+s.name)
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		s.srv = srv
		fmt.Fprintf(out, "apiext: rbac: %s server: storing %d Roles, %d RoleBindings, %d ClusterRoleBindings...\n", s.name, cfg.Roles+1, cfg.Roles+1, cfg.ClusterBindings)
		if err := loadPolicy(ctx, srv.Client, cfg); err != nil {
			return nil, fmt.Errorf("%s server: %w", s.name, err)
		}
		ic := rest.CopyConfig(srv.Config)
		ic.Impersonate = rest.ImpersonationConfig{UserName: benchUser}
		if s.user, err = kubernetes.NewForConfig(ic); err != nil {
			return nil, err
		}
	}
	// The authorizer learns of the binding from a watch: wait for it.
	rb := sides[0]
	for start := time.Now(); ; {
		_, err := rb.user.CoreV1().Pods("bench").Create(ctx, benchPod("probe", "bench"), metav1.CreateOptions{})
		if err == nil {
			break
		}
		if !apierrors.IsForbidden(err) || time.Since(start) > 10*time.Second {
			return nil, fmt.Errorf("%s may not create pods: %w", benchUser, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Honesty check: the user is not an admin on the RBAC server.
	if _, err := rb.user.CoreV1().ConfigMaps("bench").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		return nil, fmt.Errorf("want %s refused a ConfigMap create on the rbac server, got %v", benchUser, err)
	}
	fmt.Fprintf(out, "apiext: rbac: user %q may create pods in bench and is refused ConfigMaps there (not an admin)\n", benchUser)

	runRound := func(s *side, tag string, d time.Duration, record bool) {
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for cl := 0; cl < cfg.Clients; cl++ {
			wg.Add(1)
			go func(cl int) {
				defer wg.Done()
				for i := 0; time.Now().Before(deadline); i++ {
					t0 := time.Now()
					_, err := s.user.CoreV1().Pods("bench").Create(ctx, benchPod(fmt.Sprintf("%s-c%d-%d", tag, cl, i), "bench"), metav1.CreateOptions{})
					if !record {
						continue
					}
					if err != nil {
						s.errs.Add(1)
						continue
					}
					s.create.Add(time.Since(t0))
					s.n.Add(1)
				}
			}(cl)
		}
		wg.Wait()
	}
	for _, s := range sides {
		runRound(s, "warm", 2*time.Second, false)
		var err error
		if s.before, err = scrapeLatency(ctx, s.srv.Client); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(out, "apiext: rbac: %d clients creating pods, %d rounds of %s per server, alternating...\n", cfg.Clients, cfg.Rounds, cfg.Duration)
	for r := 0; r < cfg.Rounds; r++ {
		for _, s := range sides {
			runRound(s, fmt.Sprintf("r%d", r), cfg.Duration, true)
		}
	}
	secs := (time.Duration(cfg.Rounds) * cfg.Duration).Seconds()
	var rows []row
	for _, s := range sides {
		after, err := scrapeLatency(ctx, s.srv.Client)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "apiext: rbac: %s: clients %s; server %s\n", s.name, s.create.Summary(), serverLine(s.before, after, "create pods"))
		if n := s.errs.Load(); n > 0 {
			fmt.Fprintf(out, "apiext: rbac: %s: %d creates failed\n", s.name, n)
		}
		rows = append(rows, row{
			what:   fmt.Sprintf("pod create, authorization=%s", s.name),
			figure: fmt.Sprintf("p50 %s  p99 %s  %.0f req/s", round(s.create.Percentile(50)), round(s.create.Percentile(99)), float64(s.n.Load())/secs),
		})
	}
	rows[0].what += fmt.Sprintf(" (+%d Roles, RoleBindings; %d CRBs)", cfg.Roles, cfg.ClusterBindings)
	a, b := sides[0], sides[1]
	p50 := ratio(a.create.Percentile(50), b.create.Percentile(50))
	p99 := ratio(a.create.Percentile(99), b.create.Percentile(99))
	rate := float64(a.n.Load())/float64(max(b.n.Load(), 1)) - 1
	rows = append(rows, row{
		what:   "  RBAC cost (rbac vs none)",
		figure: fmt.Sprintf("p50 %+.0f%%  p99 %+.0f%%  req/s %+.0f%%", (p50-1)*100, (p99-1)*100, rate*100),
		goal:   "≤ 10 % slower (p50 ≤ +10 %, req/s ≥ −10 %): " + verdict(p50 <= 1.10 && rate >= -0.10),
	})
	return rows, nil
}

// loadPolicy makes namespaces bench and bench-1…9, lets benchUser create
// and get pods in bench, and spreads cfg.Roles Roles and RoleBindings for
// other users and groups over the ten namespaces (a tenth in bench, where
// the requests are authorized), and cfg.ClusterBindings
// ClusterRoleBindings of one ClusterRole to other users.
func loadPolicy(ctx context.Context, c kubernetes.Interface, cfg APIExtConfig) error {
	nss := []string{"bench"}
	for i := 1; i < 10; i++ {
		nss = append(nss, fmt.Sprintf("bench-%d", i))
	}
	for _, ns := range nss {
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	rbac := c.RbacV1()
	if _, err := rbac.Roles("bench").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-pods"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := rbac.RoleBindings("bench").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-pods"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: benchUser}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "bench-pods"},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := parallel(cfg.Roles, 16, func(i int) error {
		ns, name := nss[i%len(nss)], fmt.Sprintf("extra-%d", i)
		if _, err := rbac.Roles(ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, ResourceNames: []string{name}, Verbs: []string{"get", "update"}},
			},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Subjects: []rbacv1.Subject{
				{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("user-%d", i)},
				{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("group-%d", i%50)},
				{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: fmt.Sprintf("sa-%d", i)},
			},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	if _, err := rbac.ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-extra"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes", "namespaces"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	return parallel(cfg.ClusterBindings, 16, func(i int) error {
		_, err := rbac.ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-extra-%d", i)},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: fmt.Sprintf("cluster-user-%d", i)}},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "bench-extra"},
		}, metav1.CreateOptions{})
		return err
	})
}

// applyCost alternates a server-side apply of one ConfigMap of cfg.Fields
// data keys with a PUT of another just like it, each changing one key.
func applyCost(ctx context.Context, env Env, out io.Writer, cfg APIExtConfig) ([]row, error) {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "apiext-apply"), "--disable-controllers")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	cms := srv.Client.CoreV1().ConfigMaps("default")
	data := func(i int) map[string]string {
		d := make(map[string]string, cfg.Fields)
		for k := 0; k < cfg.Fields; k++ {
			d[fmt.Sprintf("key-%03d", k)] = fmt.Sprintf("value-%03d", k)
		}
		d["key-000"] = fmt.Sprintf("changed-%d", i)
		return d
	}
	opts := metav1.ApplyOptions{FieldManager: "bench", Force: true}
	apply := func(i int) error {
		_, err := cms.Apply(ctx, corev1ac.ConfigMap("applied", "default").WithData(data(i)), opts)
		return err
	}
	if err := apply(-1); err != nil {
		return nil, err
	}
	cur, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "updated"}, Data: data(-1)}, metav1.CreateOptions{FieldManager: "bench"})
	if err != nil {
		return nil, err
	}
	update := func(i int) error {
		cur.Data["key-000"] = fmt.Sprintf("changed-%d", i)
		next, err := cms.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "bench"})
		if err == nil {
			cur = next
		}
		return err
	}
	for i := 0; i < 20; i++ { // warm up
		if err := apply(i); err != nil {
			return nil, err
		}
		if err := update(i); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(out, "apiext: apply: a ConfigMap of %d data keys, %d applies and %d updates alternating, one client...\n", cfg.Fields, cfg.Writes, cfg.Writes)
	before, err := scrapeLatency(ctx, srv.Client)
	if err != nil {
		return nil, err
	}
	var ap, up Latencies
	for i := 0; i < cfg.Writes; i++ {
		t0 := time.Now()
		if err := apply(i); err != nil {
			return nil, err
		}
		t1 := time.Now()
		if err := update(i); err != nil {
			return nil, err
		}
		ap.Add(t1.Sub(t0))
		up.Add(time.Since(t1))
	}
	after, err := scrapeLatency(ctx, srv.Client)
	if err != nil {
		return nil, err
	}
	if got, err := cms.Get(ctx, "applied", metav1.GetOptions{}); err != nil || got.Data["key-000"] != fmt.Sprintf("changed-%d", cfg.Writes-1) || len(got.Data) != cfg.Fields {
		return nil, fmt.Errorf("applied ConfigMap not as last applied (err %v)", err)
	}
	fmt.Fprintf(out, "apiext: apply: apply  clients %s; server %s\n", ap.Summary(), serverLine(before, after, "patch configmaps"))
	fmt.Fprintf(out, "apiext: apply: update clients %s; server %s\n", up.Summary(), serverLine(before, after, "update configmaps"))
	p50, p99 := ratio(ap.Percentile(50), up.Percentile(50)), ratio(ap.Percentile(99), up.Percentile(99))
	return []row{
		{what: fmt.Sprintf("ConfigMap of %d keys, apply (PATCH apply-patch+yaml)", cfg.Fields), figure: fmt.Sprintf("p50 %s  p99 %s", round(ap.Percentile(50)), round(ap.Percentile(99)))},
		{what: fmt.Sprintf("ConfigMap of %d keys, update (PUT)", cfg.Fields), figure: fmt.Sprintf("p50 %s  p99 %s", round(up.Percentile(50)), round(up.Percentile(99)))},
		{what: "  apply / update", figure: fmt.Sprintf("p50 %.2f×  p99 %.2f×", p50, p99), goal: "apply ≤ 2× update (p50): " + verdict(p50 <= 2)},
	}, nil
}

var widgets = schema.GroupVersionResource{Group: "bench.wharf.dev", Version: "v1", Resource: "widgets"}

// widgetDefinition is a small namespaced kind: a few typed fields and one
// CEL rule.
func widgetDefinition() *apiextv1.CustomResourceDefinition {
	min0 := 0.0
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.bench.wharf.dev"},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: widgets.Group,
			Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object",
					Properties: map[string]apiextv1.JSONSchemaProps{
						"spec": {
							Type:     "object",
							Required: []string{"color", "replicas"},
							XValidations: apiextv1.ValidationRules{{
								Rule: "self.minReplicas <= self.replicas", Message: "replicas must not be below minReplicas",
							}},
							Properties: map[string]apiextv1.JSONSchemaProps{
								"color":       {Type: "string", Enum: []apiextv1.JSON{{Raw: []byte(`"red"`)}, {Raw: []byte(`"green"`)}, {Raw: []byte(`"blue"`)}}},
								"replicas":    {Type: "integer", Minimum: &min0},
								"minReplicas": {Type: "integer", Minimum: &min0, Default: &apiextv1.JSON{Raw: []byte(`0`)}},
								"image":       {Type: "string", MaxLength: ptrInt64(256)},
								"enabled":     {Type: "boolean"},
								"tags":        {Type: "array", Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{Type: "string"}}},
							},
						},
					},
				}},
			}},
		},
	}
}

func ptrInt64(v int64) *int64 { return &v }

func widget(name string, replicas, minReplicas int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "bench.wharf.dev/v1", "kind": "Widget",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"app": "bench"}},
		"spec": map[string]any{
			"color": []string{"red", "green", "blue"}[replicas%3], "replicas": replicas, "minReplicas": minReplicas,
			"image": "registry.wharf.local/wharf/testapp:v1", "enabled": true, "tags": []any{"a", "b"},
		},
	}}
}

// customObjects defines Widgets, creates cfg.Objects of them with
// cfg.Clients clients and lists them all cfg.Lists times, reading the
// server's memory before and after.
func customObjects(ctx context.Context, env Env, out io.Writer, cfg APIExtConfig) ([]row, error) {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "apiext-crd"), "--disable-controllers")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	time.Sleep(2 * time.Second)
	rss0, err := srv.RSS()
	if err != nil {
		return nil, err
	}
	ext, err := apiextclient.NewForConfig(srv.Config)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(srv.Config)
	if err != nil {
		return nil, err
	}
	if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, widgetDefinition(), metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	ws := dyn.Resource(widgets).Namespace("default")
	for start := time.Now(); ; { // served once established
		_, err := ws.Create(ctx, widget("probe", 1, 0), metav1.CreateOptions{})
		if err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			return nil, fmt.Errorf("widgets not served after 10s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := ws.Delete(ctx, "probe", metav1.DeleteOptions{}); err != nil {
		return nil, err
	}
	// Honesty check: the CEL rule is evaluated.
	if _, err := ws.Create(ctx, widget("invalid", 1, 5), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		return nil, fmt.Errorf("want a Widget breaking the CEL rule refused as invalid, got %v", err)
	}
	fmt.Fprintf(out, "apiext: crd: Widgets defined (6 typed fields, 1 CEL rule; a Widget breaking the rule is refused); creating %d with %d clients...\n", cfg.Objects, cfg.Clients)

	var create Latencies
	t0 := time.Now()
	if err := parallel(cfg.Objects, cfg.Clients, func(i int) error {
		t := time.Now()
		if _, err := ws.Create(ctx, widget(fmt.Sprintf("w-%d", i), int64(i%10+1), int64(i%2)), metav1.CreateOptions{}); err != nil {
			return err
		}
		create.Add(time.Since(t))
		return nil
	}); err != nil {
		return nil, err
	}
	elapsed := time.Since(t0)
	rate := float64(cfg.Objects) / elapsed.Seconds()
	time.Sleep(2 * time.Second)
	rss1, err := srv.RSS()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "apiext: crd: created %d in %s (%.0f/s): %s\n", cfg.Objects, elapsed.Round(10*time.Millisecond), rate, create.Summary())

	fmt.Fprintf(out, "apiext: crd: listing all %d %d times (JSON)...\n", cfg.Objects, cfg.Lists)
	var list Latencies
	for i := 0; i < cfg.Lists; i++ {
		t := time.Now()
		l, err := ws.List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		list.Add(time.Since(t))
		if len(l.Items) != cfg.Objects {
			return nil, errors.New("list: " + fmt.Sprint(len(l.Items)) + " widgets, want " + fmt.Sprint(cfg.Objects))
		}
	}
	time.Sleep(2 * time.Second)
	rss2, err := srv.RSS()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "apiext: crd: list %s\n", list.Summary())
	fmt.Fprintf(out, "apiext: crd: server RSS %s before, %s holding %d Widgets, %s after the lists\n", mb(rss0), mb(rss1), cfg.Objects, mb(rss2))
	return []row{
		{what: fmt.Sprintf("custom object create (%d, %d clients)", cfg.Objects, cfg.Clients), figure: fmt.Sprintf("p50 %s  p99 %s  %.0f/s", round(create.Percentile(50)), round(create.Percentile(99)), rate)},
		{what: fmt.Sprintf("list %d custom objects (JSON, %d lists)", cfg.Objects, cfg.Lists), figure: fmt.Sprintf("p50 %s  p99 %s", round(list.Percentile(50)), round(list.Percentile(99)))},
		{what: "server RSS (before, holding, after lists)", figure: fmt.Sprintf("%s, %s, %s", mb(rss0), mb(rss1), mb(rss2))},
	}, nil
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
