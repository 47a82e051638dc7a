package node

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// SystemInfo is what the node reports about its host.
type SystemInfo struct {
	KernelVersion, OSImage        string
	MachineID, SystemUUID, BootID string
	CPUs                          int64
	MemoryBytes                   int64
	EphemeralStorageBytes         int64
}

// DetectSystem reads the host's description from /proc, /etc and /sys;
// ephemeral storage is the size of the filesystem holding stateDir, where
// the agent keeps pods' volumes and logs. Missing identifiers stay empty
// (a container or network namespace may hide them); missing sizes are errors.
func DetectSystem(stateDir string) (SystemInfo, error) {
	s := SystemInfo{
		KernelVersion: readTrimmed("/proc/sys/kernel/osrelease"),
		MachineID:     readTrimmed("/etc/machine-id"),
		SystemUUID:    readTrimmed("/sys/class/dmi/id/product_uuid"),
		BootID:        readTrimmed("/proc/sys/kernel/random/boot_id"),
		CPUs:          int64(runtime.NumCPU()),
		OSImage:       "Linux",
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		if name := osImage(data); name != "" {
			s.OSImage = name
		}
	}
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return s, fmt.Errorf("memory size: %w", err)
	}
	if s.MemoryBytes, err = memTotal(meminfo); err != nil {
		return s, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(stateDir, &st); err != nil {
		return s, fmt.Errorf("size of the filesystem of %s: %w", stateDir, err)
	}
	s.EphemeralStorageBytes = int64(st.Blocks) * st.Bsize
	return s, nil
}

func readTrimmed(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// osImage returns PRETTY_NAME from os-release content.
func osImage(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "PRETTY_NAME=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			return u
		}
		return strings.Trim(v, `"'`)
	}
	return ""
}

// memTotal returns MemTotal from /proc/meminfo content, in bytes.
func memTotal(data []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("MemTotal %q: %w", f[1], err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}
