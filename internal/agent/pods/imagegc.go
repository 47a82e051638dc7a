package pods

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image garbage collection, the kubelet's defaults: every 5 minutes, when
// the image filesystem is more than 85 % full, images no container uses
// go, least recently used first, until it is at most 80 % full. An image
// is kept for 2 minutes after the agent first sees it, so that one pulled
// for a container about to be created is not collected under it.
const (
	imageGCPeriod              = 5 * time.Minute
	defaultImageGCHighPercent  = 85
	defaultImageGCLowPercent   = 80
	imageGCMinAge              = 2 * time.Minute
	eventFreeDiskSpaceFailed   = "FreeDiskSpaceFailed"
	eventImageGCFailed         = "ImageGCFailed"
	eventImageGarbageCollected = "ImageGarbageCollected"
)

// imageGC remembers when each image was first seen and last used.
type imageGC struct {
	mu        sync.Mutex
	last      time.Time
	firstSeen map[string]time.Time
	lastUsed  map[string]time.Time
}

// fsStats returns a filesystem's capacity and available bytes.
type fsStats func(path string) (capacity, available uint64, err error)

func statfs(path string) (uint64, uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}

// maybeCollectImages runs collectImages once per imageGCPeriod and reports
// what it could not free on the Node, as the kubelet does.
func (m *Manager) maybeCollectImages(ctx context.Context) {
	now := m.clock.Now()
	m.images.mu.Lock()
	due := now.Sub(m.images.last) >= imageGCPeriod
	if due {
		m.images.last = now
	}
	m.images.mu.Unlock()
	if !due {
		return
	}
	if err := m.collectImages(ctx); err != nil {
		m.log.Warn("image garbage collection", "err", err)
		m.nodeEvent(v1.EventTypeWarning, eventImageGCFailed, "%v", err)
	}
}

// collectImages frees the image filesystem down to the low threshold
// when it is above the high one.
func (m *Manager) collectImages(ctx context.Context) error {
	fsInfo, err := m.cfg.Images.ImageFsInfo(ctx)
	if err != nil {
		return fmt.Errorf("image filesystem: %w", err)
	}
	if len(fsInfo.GetImageFilesystems()) == 0 || fsInfo.ImageFilesystems[0].GetFsId().GetMountpoint() == "" {
		return errors.New("the runtime reports no image filesystem")
	}
	mountpoint := fsInfo.ImageFilesystems[0].FsId.Mountpoint
	capacity, available, err := m.fsStats(mountpoint)
	if err != nil {
		return fmt.Errorf("image filesystem %s: %w", mountpoint, err)
	}
	images, err := m.cfg.Images.ListImages(ctx, nil)
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	containers, err := m.cfg.Runtime.ListContainers(ctx, nil)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	candidates := m.images.observe(m.clock.Now(), images, containers)
	if capacity == 0 || (capacity-available)*100 < uint64(m.cfg.ImageGCHighPercent)*capacity {
		return nil
	}
	want := int64(capacity*uint64(100-m.cfg.ImageGCLowPercent)/100) - int64(available)
	freed, err := m.removeImages(ctx, candidates, want)
	if err != nil {
		return err
	}
	if freed < want {
		m.nodeEvent(v1.EventTypeWarning, eventFreeDiskSpaceFailed,
			"Failed to garbage collect required amount of images. Attempted to free %d bytes, but only found %d bytes eligible to free.", want, freed)
	}
	return nil
}

// observe records use and returns the images that may be removed, least
// recently used first.
func (g *imageGC) observe(now time.Time, images []*runtimeapi.Image, containers []*runtimeapi.Container) []*runtimeapi.Image {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.firstSeen == nil {
		g.firstSeen, g.lastUsed = map[string]time.Time{}, map[string]time.Time{}
	}
	inUse := map[string]bool{}
	for _, c := range containers {
		inUse[c.ImageRef] = true
		if c.Image != nil {
			inUse[c.Image.Image] = true
		}
	}
	present := map[string]bool{}
	var candidates []*runtimeapi.Image
	for _, img := range images {
		present[img.Id] = true
		if _, ok := g.firstSeen[img.Id]; !ok {
			g.firstSeen[img.Id] = now
		}
		used := inUse[img.Id]
		for _, tag := range img.RepoTags {
			used = used || inUse[tag]
		}
		for _, d := range img.RepoDigests {
			used = used || inUse[d]
		}
		switch {
		case used:
			g.lastUsed[img.Id] = now
		case img.Pinned, now.Sub(g.firstSeen[img.Id]) < imageGCMinAge:
		default:
			candidates = append(candidates, img)
		}
	}
	for id := range g.firstSeen {
		if !present[id] {
			delete(g.firstSeen, id)
			delete(g.lastUsed, id)
		}
	}
	lastUse := func(id string) time.Time {
		if t, ok := g.lastUsed[id]; ok {
			return t
		}
		return g.firstSeen[id]
	}
	sort.SliceStable(candidates, func(i, j int) bool { return lastUse(candidates[i].Id).Before(lastUse(candidates[j].Id)) })
	return candidates
}

// removeImages removes candidates in order until want bytes are freed.
func (m *Manager) removeImages(ctx context.Context, candidates []*runtimeapi.Image, want int64) (int64, error) {
	var freed int64
	var errs []error
	for _, img := range candidates {
		if freed >= want {
			break
		}
		if err := m.cfg.Images.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: img.Id}); err != nil {
			errs = append(errs, fmt.Errorf("remove image %s: %w", img.Id, err))
			continue
		}
		freed += int64(img.Size)
		m.log.Info("image garbage collected", "image", img.Id, "tags", img.RepoTags, "bytes", img.Size)
	}
	if freed > 0 {
		m.nodeEvent(v1.EventTypeNormal, eventImageGarbageCollected, "Removed unused images, freeing %d bytes", freed)
	}
	return freed, errors.Join(errs...)
}

// nodeEvent records an event on this node, referenced as the kubelet does
// (its UID is the node's name).
func (m *Manager) nodeEvent(eventType, reason, format string, args ...any) {
	ref := &v1.ObjectReference{Kind: "Node", Name: m.cfg.NodeName, UID: types.UID(m.cfg.NodeName)}
	m.recorder.Event(ref, eventType, reason, fmt.Sprintf(format, args...))
}
