package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// VolumeBindingConfig sizes the volume binding benchmark.
type VolumeBindingConfig struct {
	// Claims is how many claims are made one by one, then at once; the
	// static pool holds 2×Claims volumes.
	Claims int
}

// VolumeBinding measures the PersistentVolume controller on a `wharf server`
// child process: a pool of static volumes, then claims created one at a
// time (each timed from its create call to the watch event that shows it
// Bound: four API writes by the controller), then a batch created at once
// (timed until the last is Bound).
func VolumeBinding(ctx context.Context, env Env, out io.Writer, cfg VolumeBindingConfig) error {
	srv, err := startServer(ctx, env.Bin, filepath.Join(env.WorkDir, "volumebinding"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	core := srv.Client.CoreV1()
	for i := range 2 * cfg.Claims {
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pool-%d", i)},
			Spec: corev1.PersistentVolumeSpec{
				StorageClassName:       "pool",
				AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: fmt.Sprintf("/tmp/pool-%d", i)}},
			},
		}
		if _, err := core.PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create volume: %w", err)
		}
	}
	w, err := core.PersistentVolumeClaims("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer w.Stop()
	var mu sync.Mutex
	bound := map[string]time.Time{}
	boundCh := make(chan string, 4*cfg.Claims)
	go func() {
		for ev := range w.ResultChan() {
			c, ok := ev.Object.(*corev1.PersistentVolumeClaim)
			if !ok || ev.Type == watch.Deleted || c.Status.Phase != corev1.ClaimBound {
				continue
			}
			mu.Lock()
			if _, seen := bound[c.Name]; !seen {
				bound[c.Name] = time.Now()
				boundCh <- c.Name
			}
			mu.Unlock()
		}
	}()
	claim := func(name string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: new("pool"),
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
	}
	wait := func(name string) error {
		timeout := time.After(time.Minute)
		for {
			select {
			case n := <-boundCh:
				if n == name {
					return nil
				}
			case <-timeout:
				return fmt.Errorf("claim %s not Bound after a minute", name)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	var lat []time.Duration
	for i := range cfg.Claims {
		name := fmt.Sprintf("one-%d", i)
		start := time.Now()
		if _, err := core.PersistentVolumeClaims("default").Create(ctx, claim(name), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create claim: %w", err)
		}
		if err := wait(name); err != nil {
			return err
		}
		mu.Lock()
		lat = append(lat, bound[name].Sub(start))
		mu.Unlock()
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(10 * time.Microsecond)
	}
	fmt.Fprintf(out, "volumes: %d claims one at a time on a pool of %d static volumes: create → Bound p50 %s, p90 %s, max %s\n",
		cfg.Claims, 2*cfg.Claims, pct(0.5), pct(0.9), lat[len(lat)-1].Round(10*time.Microsecond))

	start := time.Now()
	for i := range cfg.Claims {
		if _, err := core.PersistentVolumeClaims("default").Create(ctx, claim(fmt.Sprintf("batch-%d", i)), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create claim: %w", err)
		}
	}
	created := time.Since(start)
	for range cfg.Claims {
		select {
		case <-boundCh:
		case <-time.After(time.Minute):
			return fmt.Errorf("batch claims not Bound after a minute")
		}
	}
	d := time.Since(start)
	fmt.Fprintf(out, "volumes: %d claims created at once (creates took %s): all Bound in %s, %.0f bindings/s\n",
		cfg.Claims, created.Round(time.Millisecond), d.Round(time.Millisecond), float64(cfg.Claims)/d.Seconds())
	return nil
}
