// Package clusterservice runs the cluster service on this machine: Run in the
// foreground (`wharf service run`, for a supervisor), Start, Stop and
// Status in the background with a pid file and a log under the state dir
// (as `wharf up` runs a one-node cluster), and Purge, which removes every
// host, the network and the state dir. The service claims a provider
// network of its own on first start (internal/provider/local), so any
// number of services share one machine.
//
// Layout of the state dir S: server/ (the server's data: etcd, pki,
// registry), hosts/ (the local provider's hosts), ssh/ (the ssh
// provider's records), network.json (the claimed provider network),
// service.json (the listen address chosen on first start),
// admin.kubeconfig (what `wharf cluster` uses), service.pid, service.log,
// backups/ (clusters' backups). Backup and Restore (backup.go) archive
// the service's own state and make a new state dir from the archive.
package clusterservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"wharf.dev/wharf/internal/bgproc"
	"wharf.dev/wharf/internal/controlplane"
	"wharf.dev/wharf/internal/images"
	"wharf.dev/wharf/internal/network/netalloc"
	"wharf.dev/wharf/internal/pki"
	"wharf.dev/wharf/internal/provider/local"
)

// Defaults.
const (
	DefaultStateDir = "/var/lib/wharf-service"
	// DefaultPort is the service's port when it is free.
	DefaultPort = 7443
	// KubeconfigEnv names the service's kubeconfig for the CLI.
	KubeconfigEnv = "WHARF_SERVICE_KUBECONFIG"
)

// Options say where a service keeps its state and how it listens.
type Options struct {
	StateDir string
	// Listen is the HTTPS address of the API and registry; "": the one
	// chosen on first start, else 0.0.0.0:7443 when free, else a free
	// port.
	Listen string
	// ProviderNetwork is the local provider's network; "": the one
	// claimed on first start, else the first free /24 of 10.123.0.0/16.
	ProviderNetwork string
	TLSSANs         []string
	// NoController serves the API only: clusters are stored, not built.
	NoController bool
	// LogLevel is passed to the background process by Start.
	LogLevel string
	// Binary is the wharf that Start runs (default: this executable).
	Binary string
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return o, err
	}
	o.StateDir = abs
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	return o, nil
}

// Paths below the state dir.
func (o Options) serverDir() string   { return filepath.Join(o.StateDir, "server") }
func (o Options) hostsDir() string    { return filepath.Join(o.StateDir, "hosts") }
func (o Options) sshDir() string      { return filepath.Join(o.StateDir, "ssh") }
func (o Options) networkFile() string { return filepath.Join(o.StateDir, "network.json") }
func (o Options) settingsFile() string {
	return filepath.Join(o.StateDir, "service.json")
}

// Kubeconfig is the service's admin kubeconfig, written once it is ready.
func (o Options) Kubeconfig() string { return filepath.Join(o.StateDir, "admin.kubeconfig") }

// Proc is the service's background process.
func (o Options) Proc() bgproc.Proc {
	return bgproc.Proc{Name: "service", PidFile: filepath.Join(o.StateDir, "service.pid"), LogFile: filepath.Join(o.StateDir, "service.log")}
}

// owner names the service in its bridge's alias and in messages.
func (o Options) owner() string { return "wharf service " + o.StateDir }

// localConfig is the local provider's Config of this service.
func (o Options) localConfig() local.Config {
	return local.Config{StateDir: o.hostsDir(), Owner: o.owner(), Logger: o.Logger.With("provider", "local")}
}

// settings are what the first start chose and later ones keep.
type settings struct {
	Listen string `json:"listen"`
}

// listenAddress returns o.Listen, or the address of an earlier start,
// or 0.0.0.0:DefaultPort when free, else a free port; and records it.
func (o Options) listenAddress() (string, error) {
	var s settings
	data, err := os.ReadFile(o.settingsFile())
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &s); err != nil {
			return "", fmt.Errorf("%s: %w", o.settingsFile(), err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	switch {
	case o.Listen != "":
		s.Listen = o.Listen
	case s.Listen == "":
		port, err := netalloc.FreePort("0.0.0.0", DefaultPort)
		if err != nil {
			return "", err
		}
		s.Listen = net.JoinHostPort("0.0.0.0", strconv.Itoa(port))
	}
	data, _ = json.Marshal(s)
	return s.Listen, pki.WriteFile(o.settingsFile(), append(data, '\n'), 0o600)
}

// Run runs the service in the foreground until ctx ends or it fails: it
// claims the provider network (or takes back the one it has), starts
// the server in service mode with the cluster controller, writes the
// kubeconfig and pid file, and pushes the built-in images.
func Run(ctx context.Context, stderr io.Writer, o Options) error {
	o, err := o.withDefaults()
	if err != nil {
		return err
	}
	log := o.Logger
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return err
	}
	listen, err := o.listenAddress()
	if err != nil {
		return err
	}
	opts := controlplane.Options{
		Logger: log, DataDir: o.serverDir(), Listen: listen, TLSSANs: o.TLSSANs,
		Service: true, ProviderNetwork: o.ProviderNetwork, HostsDir: o.hostsDir(),
	}
	network := "none (no cluster controller)"
	if o.NoController {
		log.Warn("no cluster controller: clusters are stored but not built")
	} else {
		// Hosts need the network: a service that builds no clusters
		// claims none.
		n, err := local.ClaimNetwork(ctx, o.networkFile(), o.ProviderNetwork, o.localConfig())
		if err != nil {
			return err
		}
		opts.ProviderNetwork, opts.ServiceController = n.CIDR, clusterController(o, n)
		network = n.CIDR + " on " + n.Bridge
	}
	s, err := controlplane.Start(ctx, opts)
	if err != nil {
		return err
	}
	// A copy at the top of the state dir, where the CLI looks; written
	// once the service is ready, so its presence means "started".
	data, err := os.ReadFile(s.AdminKubeconfig)
	if err == nil {
		err = pki.WriteFile(o.Kubeconfig(), data, 0o600)
	}
	if err != nil {
		s.Stop()
		return fmt.Errorf("write %s: %w", o.Kubeconfig(), err)
	}
	// Run under a supervisor, the pid file lets status and stop find it too.
	// Written atomically: `service start` polls it meanwhile, and an empty
	// file read half-way would say the service exited.
	if err := pki.WriteFile(o.Proc().PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		log.Warn("pid file", "err", err)
	}
	pushBuiltinImages(ctx, log, o.Kubeconfig())
	fmt.Fprintf(stderr, "wharf service ready at %s (provider network %s)\nexport %s=%s\n", s.URL, network, KubeconfigEnv, o.Kubeconfig())
	return s.Wait(ctx)
}

// pushBuiltinImages pushes the images every cluster needs (the pause image
// above all) from images/ next to the wharf binary, where `make build`
// puts them, so that clusters can run pods without a push by hand.
func pushBuiltinImages(ctx context.Context, log *slog.Logger, kubeconfig string) {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	tarballs, _ := filepath.Glob(filepath.Join(filepath.Dir(exe), "images", "*.tar"))
	if len(tarballs) == 0 {
		log.Warn("no built-in images next to the binary: push them with `wharf image push` (make build makes them)")
		return
	}
	r, err := images.RemoteFor(kubeconfig)
	if err == nil {
		err = images.PushFiles(ctx, io.Discard, r, tarballs, "")
	}
	if err != nil {
		log.Warn("pushing the built-in images", "err", err)
	}
}
