package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/up"
)

// IngressConfig sizes the ingress benchmark.
type IngressConfig struct {
	// Conns connections on Threads wrk threads, for Duration per round.
	Conns, Threads int
	Duration       time.Duration
	// Rounds per proxy and scheme, alternating between the proxies.
	Rounds int
}

// benchHost is the name the Ingress and nginx serve; wrk resolves it from
// a hosts file of its own (a private mount namespace), never through the
// machine's resolver.
const benchHost = "bench.example.test"

// Ingress compares the agent's ingress proxy with nginx from Debian
// configured as the same reverse proxy (keep-alive to the same two pods,
// no access log, X-Forwarded-* headers set), driven by the same client,
// wrk, in the same run: requests per second and latency percentiles over
// HTTP and HTTPS with keep-alive, on a `wharf up` node of this machine
// (root).
func Ingress(ctx context.Context, env Env, out io.Writer, cfg IngressConfig) error {
	for _, bin := range []string{"nginx", "wrk", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not installed (hack/install-deps.sh installs it)", bin)
		}
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	o, c, err := upNode(ctx, env, func(o *up.Options) {
		o.IngressHTTP, o.IngressHTTPS = "127.0.0.1:"+strconv.Itoa(ports[0]), "127.0.0.1:"+strconv.Itoa(ports[1])
	})
	if err != nil {
		return err
	}
	defer up.Down(context.WithoutCancel(ctx), io.Discard, o, true)

	dir := filepath.Join(env.WorkDir, "ingress")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := pki.EnsureCA(dir, "bench ingress CA")
	if err != nil {
		return err
	}
	if _, err := ca.EnsureServing(dir, "tls", []string{benchHost}); err != nil {
		return err
	}
	podIPs, err := ingressBackends(ctx, c, dir)
	if err != nil {
		return err
	}
	nginx, err := startNginx(ctx, dir, ports[2], ports[3], podIPs)
	if err != nil {
		return err
	}
	defer nginx.stop()
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 "+benchHost+"\n"), 0o644); err != nil {
		return err
	}
	targets := []struct{ proxy, scheme, url string }{
		{"nginx", "http", fmt.Sprintf("http://%s:%d/healthz", benchHost, ports[2])},
		{"wharf", "http", fmt.Sprintf("http://%s:%d/healthz", benchHost, ports[0])},
		{"nginx", "https", fmt.Sprintf("https://%s:%d/healthz", benchHost, ports[3])},
		{"wharf", "https", fmt.Sprintf("https://%s:%d/healthz", benchHost, ports[1])},
	}
	for _, t := range targets {
		if _, err := runWrk(ctx, hosts, t.url, 1, 1, time.Second); err != nil {
			return fmt.Errorf("%s %s: %w", t.proxy, t.url, err)
		}
	}
	fmt.Fprintf(out, "ingress: two pods (%s), wrk %d threads %d connections %s, %d rounds alternating; nginx %s\n",
		strings.Join(podIPs, ", "), cfg.Threads, cfg.Conns, cfg.Duration, cfg.Rounds, nginxVersion())
	results := map[string]*wrkResult{}
	// The proxies' own CPU per request: nginx's master and workers, the
	// agent (the ingress proxy is in its process).
	proxyCPU := map[string]func() time.Duration{
		"nginx": func() time.Duration { return familyCPU(nginx.cmd.Process.Pid) },
		"wharf": func() time.Duration { return processCPU(filepath.Join(o.StateDir, "run", "agent.pid")) },
	}
	for range cfg.Rounds {
		for _, t := range targets {
			before := proxyCPU[t.proxy]()
			r, err := runWrk(ctx, hosts, t.url, cfg.Threads, cfg.Conns, cfg.Duration)
			if err != nil {
				return fmt.Errorf("%s %s: %w", t.proxy, t.url, err)
			}
			r.cpu = proxyCPU[t.proxy]() - before
			key := t.proxy + " " + t.scheme
			if results[key] == nil {
				results[key] = &wrkResult{}
			}
			results[key].add(r)
		}
	}
	for _, scheme := range []string{"http", "https"} {
		n, w := results["nginx "+scheme], results["wharf "+scheme]
		fmt.Fprintf(out, "ingress: %s keep-alive: nginx %s; wharf %s: %.0f%% of nginx's requests per second, p99 %.2fx nginx's; the proxy's CPU per request: nginx %.0f µs, wharf %.0f µs\n",
			strings.ToUpper(scheme), n, w, 100*w.rps()/n.rps(), w.p99()/n.p99(), n.cpuPerRequest(), w.cpuPerRequest())
	}
	return nil
}

// ingressBackends runs two testapp servers behind service "web" and an
// Ingress for benchHost over HTTP and HTTPS (Secret "bench-tls" from
// dir's tls.crt and tls.key), and waits until the Ingress answers; it
// returns the pods' addresses.
func ingressBackends(ctx context.Context, c kubernetes.Interface, dir string) ([]string, error) {
	var pods []*corev1.Pod
	for _, name := range []string{"web-0", "web-1"} {
		p := sleepPod(name)
		p.Labels = map[string]string{"app": "web"}
		p.Spec.Containers[0].Args = quietServer
		pods = append(pods, p)
	}
	if err := runPods(ctx, c, pods, nil); err != nil {
		return nil, err
	}
	var ips []string
	for _, p := range pods {
		got, err := c.CoreV1().Pods("default").Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		ips = append(ips, got.Status.PodIP)
	}
	if _, err := c.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	crt, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(filepath.Join(dir, "tls.key"))
	if err != nil {
		return nil, err
	}
	if _, err := c.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	prefix := networkingv1.PathTypePrefix
	_, err = c.NetworkingV1().Ingresses("default").Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{benchHost}, SecretName: "bench-tls"}},
			Rules: []networkingv1.IngressRule{{Host: benchHost, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefix, Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"}}}}},
			}}}},
		},
	}, metav1.CreateOptions{})
	return ips, err
}

// nginxConf is the equivalent reverse proxy: nginx's defaults but for
// the access log (the ingress proxy keeps none per request), keep-alive
// to the pods, and the headers an ingress sets.
var nginxConf = template.Must(template.New("nginx").Parse(`worker_processes auto;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  upstream web {
{{- range .Backends}}
    server {{.}}:8080;
{{- end}}
    keepalive 256;
  }
  server {
    listen 127.0.0.1:{{.HTTP}};
    listen 127.0.0.1:{{.HTTPS}} ssl http2;
    server_name {{.Host}};
    ssl_certificate {{.Dir}}/tls.crt;
    ssl_certificate_key {{.Dir}}/tls.key;
    location / {
      proxy_pass http://web;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Real-IP $remote_addr;
    }
  }
}
`))

type nginxProc struct{ cmd *exec.Cmd }

func startNginx(ctx context.Context, dir string, httpPort, httpsPort int, backends []string) (*nginxProc, error) {
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		return nil, err
	}
	err = nginxConf.Execute(f, map[string]any{"Dir": dir, "HTTP": httpPort, "HTTPS": httpsPort, "Host": benchHost, "Backends": backends})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("nginx", "-c", conf, "-p", dir, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	p := &nginxProc{cmd: cmd}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(httpPort))
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("nginx not listening: %w", err)
		}
	}
}

// stop ends nginx and its workers (SIGQUIT: a graceful stop of the whole
// process group nginx keeps).
func (p *nginxProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func nginxVersion() string {
	out, _ := exec.Command("nginx", "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
}

// wrkResult sums wrk runs.
type wrkResult struct {
	requests   int
	seconds    float64
	p50s, p99s []float64     // per run, in ms
	cpu        time.Duration // of the proxy under test, if measured
}

func (w *wrkResult) add(r *wrkResult) {
	w.requests += r.requests
	w.seconds += r.seconds
	w.cpu += r.cpu
	w.p50s = append(w.p50s, r.p50s...)
	w.p99s = append(w.p99s, r.p99s...)
}

func (w *wrkResult) rps() float64 { return float64(w.requests) / w.seconds }

// cpuPerRequest is the proxy's CPU per request, in µs.
func (w *wrkResult) cpuPerRequest() float64 {
	return float64(w.cpu.Microseconds()) / float64(max(w.requests, 1))
}

// p99 is the worst round's p99: a proxy is as slow as its slowest round.
func (w *wrkResult) p99() float64 { return maxOf(w.p99s) }

func (w *wrkResult) String() string {
	return fmt.Sprintf("%.0f req/s, p50 %.2fms (worst round), p99 %.2fms (worst round)", w.rps(), maxOf(w.p50s), w.p99())
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	wrkErrors   = regexp.MustCompile(`(Socket errors|Non-2xx or 3xx responses)`)
	wrkPercent  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)`)
)

// runWrk runs wrk against url with hosts as its /etc/hosts (a private
// mount namespace), and parses its figures; any error or non-2xx answer
// fails the run.
func runWrk(ctx context.Context, hosts, url string, threads, conns int, d time.Duration) (*wrkResult, error) {
	script := `mount --bind "$0" /etc/hosts && exec "$@"`
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "sh", "-c", script, hosts,
		"wrk", "--latency", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", strconv.Itoa(max(1, int(d.Seconds())))+"s", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	text := string(out)
	if wrkErrors.MatchString(text) {
		return nil, fmt.Errorf("wrk saw errors:\n%s", text)
	}
	m := wrkRequests.FindStringSubmatch(text)
	if m == nil {
		return nil, errors.New("wrk: no request count in its output:\n" + text)
	}
	r := &wrkResult{}
	r.requests, _ = strconv.Atoi(m[1])
	r.seconds = toMillis(m[2], m[3]) / 1000
	for _, p := range wrkPercent.FindAllStringSubmatch(text, -1) {
		ms := toMillis(p[2], p[3])
		if p[1] == "50" {
			r.p50s = append(r.p50s, ms)
		} else {
			r.p99s = append(r.p99s, ms)
		}
	}
	if r.requests == 0 || len(r.p99s) == 0 {
		return nil, errors.New("wrk: no figures in its output:\n" + text)
	}
	return r, nil
}

func toMillis(v, unit string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return f / 1000
	case "s":
		return f * 1000
	case "m":
		return f * 60000
	}
	return f
}

// freePorts returns n free TCP ports of 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
