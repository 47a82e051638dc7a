package pods

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	testclock "k8s.io/utils/clock/testing"
)

// TestImageGC fills a fake image filesystem past the high threshold:
// nothing younger than the minimum age goes, then the least recently used
// unused images go until the low threshold would be reached; images in
// use and pinned ones stay; not enough to free is reported on the node.
func TestImageGC(t *testing.T) {
	rt := critest.NewFakeRuntimeService()
	images := critest.NewFakeImageService()
	images.SetFakeImageSize(60)
	images.SetFakeImagePinned("pause", true) // before the images are made
	images.SetFakeImages([]string{"running", "old-1", "old-2", "recent", "pause"})
	images.SetFakeFilesystemUsage([]*runtimeapi.FilesystemUsage{{FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/var/lib/containerd"}}})
	using := func(imgs ...string) {
		var cs []*critest.FakeContainer
		for _, img := range imgs {
			cs = append(cs, &critest.FakeContainer{ContainerStatus: runtimeapi.ContainerStatus{
				Id: "c-" + img, Metadata: &runtimeapi.ContainerMetadata{Name: img},
				State: runtimeapi.ContainerState_CONTAINER_RUNNING, Image: &runtimeapi.ImageSpec{Image: img}, ImageRef: img,
			}})
		}
		rt.SetFakeContainers(cs)
	}
	clock := testclock.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	ev := &events{}
	m := New(Config{NodeName: "n1", Runtime: rt, Images: images, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	m.recorder = ev
	// 1000 bytes, 90 % used: 100 bytes to free to get down to 80 %.
	available := uint64(100)
	m.fsStats = func(path string) (uint64, uint64, error) {
		if path != "/var/lib/containerd" {
			t.Errorf("statfs of %q, want the runtime's image filesystem", path)
		}
		return 1000, available, nil
	}
	ctx := context.Background()
	left := func() []string {
		imgs, err := images.ListImages(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, img := range imgs {
			ids = append(ids, img.Id)
		}
		sort.Strings(ids)
		return ids
	}
	all := left()

	using("running", "recent")
	if err := m.collectImages(ctx); err != nil {
		t.Fatal(err)
	}
	if got := left(); !slices.Equal(got, all) {
		t.Errorf("images newer than the minimum age removed: %v", got)
	}
	if !ev.has(eventFreeDiskSpaceFailed + ": Failed to garbage collect required amount of images. Attempted to free 100 bytes, but only found 0 bytes") {
		t.Errorf("events %v, want FreeDiskSpaceFailed", ev.list)
	}

	// "recent" was used a minute after the others were first seen.
	clock.Step(time.Minute)
	if err := m.collectImages(ctx); err != nil {
		t.Fatal(err)
	}
	using("running")
	clock.Step(2 * time.Minute)
	available = 500 // 50 % used: below the threshold, nothing goes.
	if err := m.collectImages(ctx); err != nil {
		t.Fatal(err)
	}
	if got := left(); !slices.Equal(got, all) {
		t.Errorf("images removed below the high threshold: %v", got)
	}
	available = 100
	if err := m.collectImages(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := left(), []string{"pause", "recent", "running"}; !slices.Equal(got, want) {
		t.Errorf("images left %v, want %v (the two least recently used removed: 120 bytes >= 100)", got, want)
	}
	if !ev.has(eventImageGarbageCollected + ": Removed unused images, freeing 120 bytes") {
		t.Errorf("events %v, want ImageGarbageCollected", ev.list)
	}
}

// TestImageGCPeriod checks collection runs once per period.
func TestImageGCPeriod(t *testing.T) {
	images := critest.NewFakeImageService()
	clock := testclock.NewFakeClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	m := New(Config{NodeName: "n1", Runtime: critest.NewFakeRuntimeService(), Images: images, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	m.recorder = &events{}
	calls := 0
	m.fsStats = func(string) (uint64, uint64, error) { calls++; return 1000, 900, nil }
	images.SetFakeFilesystemUsage([]*runtimeapi.FilesystemUsage{{FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/x"}}})
	for _, step := range []time.Duration{0, 10 * time.Second, imageGCPeriod, time.Minute} {
		clock.Step(step)
		m.maybeCollectImages(context.Background())
	}
	if calls != 2 {
		t.Errorf("%d collections over 5m10s, want 2 (at start and after the period)", calls)
	}
}
