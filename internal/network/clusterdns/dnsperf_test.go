package clusterdns

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSPerf measures the server through real sockets with dnsperf
// (Debian package dnsperf): 1000 services loaded, queries for cluster names
// and for cached external names. It prints figures and asserts nothing
// (benchmarks are not timed asserts). Run it with
//
//	WHARF_BENCH=1 go test -run TestDNSPerf -v ./internal/network/clusterdns/
//
// WHARF_BENCH_SECONDS sets the length of each run (default 10) and
// WHARF_BENCH_QPS the rate of the latency runs (default 40000).
func TestDNSPerf(t *testing.T) {
	if os.Getenv("WHARF_BENCH") != "1" {
		t.Skip("set WHARF_BENCH=1 to run dnsperf against the server")
	}
	dnsperf, err := exec.LookPath("dnsperf")
	if err != nil {
		t.Skip("dnsperf is not installed (apt-get install dnsperf)")
	}
	seconds := 10
	if v := os.Getenv("WHARF_BENCH_SECONDS"); v != "" {
		if seconds, err = strconv.Atoi(v); err != nil {
			t.Fatalf("WHARF_BENCH_SECONDS=%q: %v", v, err)
		}
	}
	qps := "40000"
	if v := os.Getenv("WHARF_BENCH_QPS"); v != "" {
		qps = v
	}
	up := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if rr, err := dns.NewRR(r.Question[0].Name + " 300 IN A 192.0.2.1"); err == nil {
			m.Answer = []dns.RR{rr}
		}
		w.WriteMsg(m)
	})
	dir := t.TempDir()
	var cluster, external bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&cluster, "svc-%d.bench.svc.cluster.local A\n", i)
		fmt.Fprintf(&external, "host-%d.example A\n", i)
	}
	files := map[string]string{"cluster": filepath.Join(dir, "cluster.txt"), "external": filepath.Join(dir, "external.txt")}
	for name, path := range files {
		data := cluster.Bytes()
		if name == "external" {
			data = external.Bytes()
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// "tuned" is the server as built; the others turn its tuning off to
	// show what each part brings.
	for _, variant := range []struct {
		name                string
		slowOnly, noBatches bool
	}{
		{"tuned", false, false},
		{"packed answers, dns package UDP server", false, true},
		{"dns.Msg answers, dns package UDP server", true, true},
	} {
		t.Run(variant.name, func(t *testing.T) {
			s := newTestServer(t, Config{Upstreams: []string{up.addr}})
			s.slowOnly, s.noBatches = variant.slowOnly, variant.noBatches
			loadServices(s, 1000)
			addr, stop := serveLoopback(t, s)
			defer stop()
			port := addr[strings.LastIndexByte(addr, ':')+1:]
			for _, names := range []string{"cluster", "external"} {
				if names == "external" {
					for i := range 1000 { // into the cache; answers live 30 s
						ask(t, s, fmt.Sprintf("host-%d.example.", i), dns.TypeA)
					}
				}
				// Throughput: as fast as it goes with 200 queries in flight.
				out := run(t, dnsperf, "-s", "127.0.0.1", "-p", port, "-d", files[names],
					"-l", strconv.Itoa(seconds), "-c", "4", "-q", "200")
				t.Logf("%s names, %s, unlimited rate:\n%s", names, variant.name, summary(out))
				if names == "external" {
					for i := range 1000 {
						ask(t, s, fmt.Sprintf("host-%d.example.", i), dns.TypeA)
					}
				}
				// Latency at the target rate, from each answer's time (-v).
				out = run(t, dnsperf, "-s", "127.0.0.1", "-p", port, "-d", files[names],
					"-l", strconv.Itoa(seconds), "-c", "4", "-q", "200", "-Q", qps, "-v")
				t.Logf("%s names, %s, at %s queries/s:\n%s\n  %s", names, variant.name, qps, summary(out), percentiles(out))
			}
		})
	}
}

// run runs dnsperf and reports the CPU time the server (this process) and
// dnsperf spent per answer: figures other work on the machine barely
// changes, unlike rates and latencies. dnsperf writes to a file, read
// afterwards: with -v it prints a line an answer, which this process, the
// server's, would otherwise read and keep while serving.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "dnsperf-*.out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	start := time.Now()
	self, children := cpuTime(syscall.RUSAGE_SELF), cpuTime(syscall.RUSAGE_CHILDREN)
	err = cmd.Run()
	self, children = cpuTime(syscall.RUSAGE_SELF)-self, cpuTime(syscall.RUSAGE_CHILDREN)-children
	out, rerr := os.ReadFile(f.Name())
	if err != nil || rerr != nil {
		t.Fatalf("%s %s: %v %v\n%s", name, strings.Join(args, " "), err, rerr, out)
	}
	t.Logf("%s %s (%v)", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if n := completed(string(out)); n > 0 {
		t.Logf("CPU per answer: server %.1f µs, dnsperf %.1f µs", float64(self.Microseconds())/n, float64(children.Microseconds())/n)
	}
	return string(out)
}

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// completed reads "Queries completed: N" from dnsperf's statistics.
func completed(out string) float64 {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "Queries" && f[1] == "completed:" {
			n, _ := strconv.ParseFloat(f[2], 64)
			return n
		}
	}
	return 0
}

// summary keeps dnsperf's statistics, not its verbose lines.
func summary(out string) string {
	var b strings.Builder
	keep := false
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "Statistics:") {
			keep = true
		}
		if keep && strings.TrimSpace(line) != "" {
			b.WriteString("  " + line)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// percentiles reads the latencies of dnsperf -v's lines
// ("> NOERROR name A 0.000123") and reports p50, p99 and p99.9.
func percentiles(out string) string {
	var lat []float64
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != ">" {
			continue
		}
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			lat = append(lat, v)
		}
	}
	if len(lat) == 0 {
		return "no latencies in dnsperf's output"
	}
	slices.Sort(lat)
	p := func(q float64) string {
		return fmt.Sprintf("%.3f ms", lat[min(len(lat)-1, int(q*float64(len(lat))))]*1000)
	}
	return fmt.Sprintf("latency of %d answers: p50 %s, p99 %s, p99.9 %s, max %s", len(lat), p(0.50), p(0.99), p(0.999), p(1))
}
