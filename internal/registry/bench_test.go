package registry

import (
	"context"
	"log/slog"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"wharf.dev/wharf/internal/storage"
)

// BenchmarkPushPull pushes an image the size of the test images (two
// 2 MiB layers) and pulls it back through the same server ("warm": the
// blobs on its disk) and, with etcd storage, through a second server
// with an empty directory ("cold": every blob read from etcd). etcd
// fsyncs, as in a cluster.
//
//	go test -run XXX -bench PushPull -benchtime 20x ./internal/registry/
func BenchmarkPushPull(b *testing.B) {
	for _, mode := range []string{"disk", "etcd"} {
		b.Run(mode, func(b *testing.B) {
			var opts []Option
			if mode == "etcd" {
				ctx, cancel := context.WithCancel(context.Background())
				e, err := storage.StartEmbedded(ctx, slog.New(slog.DiscardHandler), storage.EmbeddedConfig{Dir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { e.Close(); cancel() })
				opts = append(opts, WithShared(NewEtcdStore(e.Client, DefaultEtcdPrefix)))
			}
			_, host := serve(b, b.TempDir(), opts...)
			var push, warm, cold time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				img, err := random.Image(2<<20, 2)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0 := time.Now()
				ref := mustRef(b, host+"/bench:v1")
				if err := remote.Write(ref, img); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				pull(b, host)
				t2 := time.Now()
				push, warm = push+t1.Sub(t0), warm+t2.Sub(t1)
				if mode == "etcd" {
					b.StopTimer()
					_, other := serve(b, b.TempDir(), opts...)
					b.StartTimer()
					t3 := time.Now()
					pull(b, other)
					cold += time.Since(t3)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(push.Milliseconds())/n, "ms/push")
			b.ReportMetric(float64(warm.Milliseconds())/n, "ms/warm-pull")
			if mode == "etcd" {
				b.ReportMetric(float64(cold.Milliseconds())/n, "ms/cold-pull")
			}
		})
	}
}

// pull reads every layer of bench:v1.
func pull(b *testing.B, host string) {
	img, err := remote.Image(mustRef(b, host+"/bench:v1"))
	if err != nil {
		b.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range layers {
		readLayer(b, l)
	}
}

func readLayer(b *testing.B, l v1.Layer) {
	rc, err := l.Compressed()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := rc.Read(buf); err != nil {
			break
		}
	}
}
