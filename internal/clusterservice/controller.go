package clusterservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	wharfv1 "wharf.dev/wharf/internal/apis/wharf/v1"
	"wharf.dev/wharf/internal/coe"
	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/local"
	"wharf.dev/wharf/internal/provider/ssh"
	"wharf.dev/wharf/internal/wire"
)

// clusterController is the service's cluster controller with its
// providers: local (network namespaces on this machine, on the network n
// the service claimed), and ssh, made per template from the machines and
// key it names.
func clusterController(o Options, n local.Network) wire.ServiceController {
	return func(ctx context.Context, env wire.ServiceEnv) error {
		cfg := o.localConfig()
		cfg.Network, cfg.Bridge, cfg.Logger = n.CIDR, n.Bridge, env.Logger.With("provider", "local")
		// Hosts reach the service's API and registry, on its port only.
		if u, err := url.Parse(env.RegistryURL); err == nil {
			cfg.ServicePort, _ = strconv.Atoi(u.Port())
		}
		lp, err := local.New(cfg)
		if err != nil {
			return err
		}
		// The network now, so the service address exists before the first
		// host, and the hosts it adopts are wired to it again.
		if err := lp.EnsureNetwork(ctx); err != nil {
			return err
		}
		if err := lp.RepairNetwork(ctx); err != nil {
			env.Logger.Warn("rewiring the hosts of an earlier run", "err", err)
		}
		resumed, err := lp.ResumeHosts(ctx)
		if len(resumed) > 0 {
			env.Logger.Info("resumed the hosts whose process had died", "hosts", resumed)
		}
		if err != nil {
			env.Logger.Warn("resuming the hosts of an earlier run", "err", err)
		}
		go func() {
			if err := lp.Watch(ctx); err != nil {
				env.Logger.Error("watching the provider network", "err", err)
			}
		}()
		ccfg, err := coe.ConfigFromService(env, map[string]provider.Provider{"local": lp})
		if err != nil {
			return err
		}
		sshp := &sshProviders{
			kube: ccfg.Kube, log: env.Logger.With("provider", "ssh"),
			// One state dir for every ssh provider: two templates naming the
			// same machine must not hand it out twice.
			stateDir: o.sshDir(),
			made:     map[string]*ssh.Provider{},
		}
		defer sshp.close()
		ccfg.ProviderFor = sshp.forTemplate
		ccfg.BackupDir = o.backupsDir()
		return coe.New(ccfg).Run(ctx)
	}
}

// sshProviders makes and keeps one ssh provider per machine list and key.
type sshProviders struct {
	kube     kubernetes.Interface
	log      *slog.Logger
	stateDir string
	mu       sync.Mutex
	made     map[string]*ssh.Provider
}

func (s *sshProviders) forTemplate(ctx context.Context, namespace string, t wharfv1.ClusterTemplateSpec) (provider.Provider, error) {
	if t.Provider != "ssh" || t.SSH == nil {
		return nil, fmt.Errorf("provider %q is not configured in this service", t.Provider)
	}
	key, err := s.secretKey(ctx, namespace, t.SSH.KeySecret, "ssh-privatekey")
	if err != nil {
		return nil, err
	}
	var known []byte
	if t.SSH.KnownHostsSecret != "" {
		if known, err = s.secretKey(ctx, namespace, t.SSH.KnownHostsSecret, "known_hosts"); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256([]byte(strings.Join(t.SSH.Hosts, ",") + "\x00" + t.SSH.User + "\x00" + string(key) + "\x00" + string(known)))
	id := hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.made[id]; ok {
		return p, nil
	}
	p, err := ssh.New(ssh.Config{Hosts: t.SSH.Hosts, User: t.SSH.User, Key: key, KnownHosts: known, StateDir: s.stateDir, Logger: s.log.With("hosts", t.SSH.Hosts)})
	if err != nil {
		return nil, err
	}
	s.made[id] = p
	return p, nil
}

func (s *sshProviders) secretKey(ctx context.Context, namespace, name, key string) ([]byte, error) {
	sec, err := s.kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("ssh provider: secret %s/%s: %w", namespace, name, err)
	}
	v, ok := sec.Data[key]
	if !ok {
		return nil, fmt.Errorf("ssh provider: secret %s/%s has no %q key", namespace, name, key)
	}
	return v, nil
}

func (s *sshProviders) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.made {
		p.Close()
	}
}
