package storage

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EmbeddedConfig configures an etcd member inside this process.
type EmbeddedConfig struct {
	// Dir holds the member's data.
	Dir string
	// Name, ClientURL, PeerURL and InitialCluster matter for a multi-member
	// cluster; a single member listens on loopback with free ports.
	Name           string
	ClientURL      string
	PeerURL        string
	InitialCluster string
	// UnsafeNoFsync is for tests only: a crash can lose acknowledged writes.
	UnsafeNoFsync bool
	// TLS secures the client and peer listeners of a member other hosts
	// reach (nil: plain HTTP, for a member on loopback).
	TLS *MemberTLS
	// Join starts a member just added to a running cluster (InitialCluster
	// lists it with the others); a member with data rejoins on its own.
	Join bool
	// ForceNewCluster restarts a member with data as the only member of
	// its cluster, keeping its data: quorum recovery (etcd's
	// --force-new-cluster). Only for the one survivor chosen to rebuild.
	ForceNewCluster bool
	// ElectionTimeout of a member with peers (default
	// DefaultElectionTimeout); the heartbeat is a tenth of it.
	ElectionTimeout time.Duration
}

// MemberTLS are a member's certificate (used to serve clients and peers,
// and as a client towards peers) and the CA both sides must chain to.
type MemberTLS struct {
	CertFile, KeyFile, CAFile string
}

// DefaultElectionTimeout is how long followers wait for a silent leader
// before electing another. etcd's default is 1 s for WAN-ish latencies;
// masters of one cluster share a LAN, so half that keeps a power cut of
// the leader to about a second of unavailable writes.
const DefaultElectionTimeout = 500 * time.Millisecond

// Embedded is a running etcd member and an in-process client to it.
type Embedded struct {
	etcd   *embed.Etcd
	Client *clientv3.Client
	quiet  *quietCore
}

// StartEmbedded starts an etcd member and waits until it serves.
func StartEmbedded(ctx context.Context, logger *slog.Logger, c EmbeddedConfig) (*Embedded, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd data dir: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Dir = c.Dir
	cfg.Name = "wharf"
	if c.Name != "" {
		cfg.Name = c.Name
	}
	client, peer := c.ClientURL, c.PeerURL
	if client == "" {
		client = "http://127.0.0.1:0"
	}
	if peer == "" {
		peer = "http://127.0.0.1:0"
	}
	cu, err := url.Parse(client)
	if err != nil {
		return nil, fmt.Errorf("etcd client url: %w", err)
	}
	pu, err := url.Parse(peer)
	if err != nil {
		return nil, fmt.Errorf("etcd peer url: %w", err)
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + peer
	if c.InitialCluster != "" {
		cfg.InitialCluster = c.InitialCluster
	}
	if c.InitialCluster == "" && c.TLS == nil {
		// One member needs no network slack: a short election makes it
		// leader in ~80 ms instead of ~0.4 s.
		cfg.TickMs, cfg.ElectionMs = 10, 100
	} else {
		election := c.ElectionTimeout
		if election <= 0 {
			election = DefaultElectionTimeout
		}
		cfg.ElectionMs = uint(election.Milliseconds())
		cfg.TickMs = max(cfg.ElectionMs/10, 10)
	}
	if c.TLS != nil {
		info := transport.TLSInfo{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, TrustedCAFile: c.TLS.CAFile, ClientCertAuth: true}
		cfg.ClientTLSInfo, cfg.PeerTLSInfo = info, info
	}
	// Members join one at a time as learners and are promoted once they
	// caught up; several masters made at once queue up here.
	cfg.MaxLearners = 6
	// etcd's strict check refuses a reconfiguration until the leader has
	// been connected to a majority for 5 s: each master made after the
	// first would wait that long. Members here only ever join as learners
	// (no quorum change) and are promoted once caught up (etcd checks
	// that on its own), so the check buys nothing.
	cfg.StrictReconfigCheck = false
	cfg.InitialClusterToken = "wharf"
	if _, err := os.Stat(filepath.Join(c.Dir, "member")); err == nil || c.Join {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.ForceNewCluster = c.ForceNewCluster
	cfg.MaxRequestBytes = 4 << 20
	cfg.QuotaBackendBytes = 8 << 30
	cfg.UnsafeNoFsync = c.UnsafeNoFsync
	cfg.WatchProgressNotifyInterval = 5 * time.Second
	quiet := &quietCore{log: logger.With("component", "etcd"), level: zapcore.WarnLevel, closing: &atomicFlag{}}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(quiet))

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd in %s: %w", c.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd in %s not ready after 60s", c.Dir)
	}
	return &Embedded{etcd: e, Client: v3client.New(e.Server), quiet: quiet}, nil
}

// Close stops the member.
func (e *Embedded) Close() {
	e.quiet.closing.Store(true)
	e.Client.Close()
	e.etcd.Close()
}

// ClientURL is where other processes reach this member.
func (e *Embedded) ClientURL() string {
	return e.etcd.Clients[0].Addr().String()
}

// Err reports a fatal error of the member (etcd stopped on its own).
func (e *Embedded) Err() <-chan error { return e.etcd.Err() }

// quietCore sends etcd's zap logs to slog at warning level and above, and
// drops the errors etcd logs while shutting down normally (etcd issue 17424).
type quietCore struct {
	log     *slog.Logger
	level   zapcore.Level
	fields  []zapcore.Field
	closing atomicBool
}

func (q *quietCore) Enabled(l zapcore.Level) bool { return l >= q.level }

func (q *quietCore) With(fs []zapcore.Field) zapcore.Core {
	return &quietCore{log: q.log, level: q.level, fields: append(append([]zapcore.Field{}, q.fields...), fs...), closing: q.closing}
}

func (q *quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if q.Enabled(e.Level) {
		return ce.AddCore(e, q)
	}
	return ce
}

// expectedNoise are etcd messages about choices made here on purpose (one
// port, simple auth tokens unused by Wharf) or about a fresh member's first start.
var expectedNoise = []string{
	"Running http and grpc server on single port",
	"simple token is not cryptographically signed",
	"Failed to detect schema version",
	"failed to update storage version",
}

func (q *quietCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	if q.closing.Load() {
		return nil
	}
	for _, n := range expectedNoise {
		if strings.HasPrefix(e.Message, n) {
			return nil
		}
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range append(append([]zapcore.Field{}, q.fields...), fs...) {
		f.AddTo(enc)
	}
	attrs := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, k, v)
	}
	level := slog.LevelWarn
	if e.Level >= zapcore.ErrorLevel {
		level = slog.LevelError
	}
	q.log.Log(context.Background(), level, strings.TrimSpace(e.Message), attrs...)
	return nil
}

func (q *quietCore) Sync() error { return nil }

// atomicBool is shared by a core and the cores derived from it.
type atomicBool = *atomicFlag

type atomicFlag struct{ v atomic.Bool }

func (f *atomicFlag) Load() bool   { return f.v.Load() }
func (f *atomicFlag) Store(b bool) { f.v.Store(b) }
