package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"wharf.dev/wharf/internal/agent/localpv"
)

// VolumesConfig sizes the volume benchmark.
type VolumesConfig struct {
	// Size of the volume made; fio's file is half of it.
	Size int64
	// Runtime of each fio run.
	Runtime time.Duration
	// Rounds of each pattern, host and volume alternating.
	Rounds int
}

// fioPatterns are what the benchmark measures: sequential 1 MiB and
// random 4 KiB, each read and written, with direct I/O at queue depth 16.
var fioPatterns = []struct{ name, rw, bs string }{
	{"seq write 1M", "write", "1M"},
	{"seq read 1M", "read", "1M"},
	{"rand write 4k", "randwrite", "4k"},
	{"rand read 4k", "randread", "4k"},
}

// Volumes compares fio's throughput on a volume of the wharf.dev/local
// provisioner (package localpv: ext4 in a preallocated image on a loop
// device) with the host directory that volume lives in, and prints the
// medians and their ratio. Root, fio, mkfs.ext4 and losetup.
func Volumes(ctx context.Context, env Env, out io.Writer, cfg VolumesConfig) error {
	if _, err := exec.LookPath("fio"); err != nil {
		return fmt.Errorf("fio (Debian package fio): %w", err)
	}
	dir := filepath.Join(env.WorkDir, "volumes")
	host := filepath.Join(dir, "host")
	if err := os.MkdirAll(host, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	disk := localpv.NewDisk(filepath.Join(dir, "vols"))
	const name = "pvc-bench"
	if err := disk.Create(ctx, name, cfg.Size); err != nil {
		return err
	}
	defer disk.Remove(context.WithoutCancel(ctx), name)

	fmt.Fprintf(out, "fio --direct=1 --ioengine=libaio --iodepth=16 --size=%dMiB --runtime=%v, median of %d rounds, host dir and volume alternating\n",
		cfg.Size/2>>20, cfg.Runtime, cfg.Rounds)
	fmt.Fprintf(out, "%-14s %22s %22s %6s\n", "pattern", "host", "volume", "ratio")
	for _, p := range fioPatterns {
		var onHost, onVol []fioResult
		for range cfg.Rounds {
			for _, target := range []string{host, disk.Path(name)} {
				r, err := runFio(ctx, target, p.rw, p.bs, cfg.Size/2, cfg.Runtime)
				if err != nil {
					return err
				}
				if target == host {
					onHost = append(onHost, r)
				} else {
					onVol = append(onVol, r)
				}
			}
		}
		h, v := medianFio(onHost), medianFio(onVol)
		fmt.Fprintf(out, "%-14s %22s %22s %5.0f%%\n", p.name, h, v, 100*v.bytes/h.bytes)
	}
	return nil
}

type fioResult struct{ bytes, iops float64 }

func (r fioResult) String() string {
	return fmt.Sprintf("%5.0f MiB/s %6.0f IOPS", r.bytes/(1<<20), r.iops)
}

func medianFio(rs []fioResult) fioResult {
	slices.SortFunc(rs, func(a, b fioResult) int {
		switch {
		case a.bytes < b.bytes:
			return -1
		case a.bytes > b.bytes:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}

func runFio(ctx context.Context, dir, rw, bs string, size int64, runtime time.Duration) (fioResult, error) {
	cmd := exec.CommandContext(ctx, "fio", "--name=bench", "--directory="+dir, fmt.Sprintf("--size=%d", size),
		"--bs="+bs, "--rw="+rw, "--direct=1", "--ioengine=libaio", "--iodepth=16",
		fmt.Sprintf("--runtime=%d", int(runtime.Seconds())), "--time_based", "--ramp_time=1",
		"--group_reporting", "--output-format=json")
	data, err := cmd.Output()
	if err != nil {
		return fioResult{}, fmt.Errorf("fio %s %s in %s: %w", rw, bs, dir, err)
	}
	var res struct {
		Jobs []struct {
			Read, Write struct {
				BW   float64 `json:"bw_bytes"`
				IOPS float64 `json:"iops"`
			}
		}
	}
	if err := json.Unmarshal(data, &res); err != nil || len(res.Jobs) == 0 {
		return fioResult{}, fmt.Errorf("fio output: %v", err)
	}
	j := res.Jobs[0]
	return fioResult{bytes: j.Read.BW + j.Write.BW, iops: j.Read.IOPS + j.Write.IOPS}, nil
}
