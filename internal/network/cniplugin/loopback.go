package cniplugin

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"
)

// loopback does what the reference loopback plugin does: ADD sets lo up
// in the sandbox's namespace and reports 127.0.0.1/8 on it. DEL has
// nothing to undo (lo goes with the namespace) and CHECK nothing to check.
func loopback(req Request, conf NetConf) ([]byte, error) {
	if req.Command != "ADD" {
		return nil, nil
	}
	if err := setLoopbackUp(req.NetNS); err != nil {
		return nil, &Error{CNIVersion: conf.CNIVersion, Code: CodeAgent, Msg: "loopback", Details: err.Error()}
	}
	ip := map[string]any{"interface": 0, "address": "127.0.0.1/8"}
	if strings.HasPrefix(conf.CNIVersion, "0.") {
		ip["version"] = "4" // 0.3.x and 0.4.0 results name the family
	}
	return json.Marshal(map[string]any{
		"cniVersion": conf.CNIVersion,
		"interfaces": []map[string]string{{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": req.NetNS}},
		"ips":        []any{ip},
		"dns":        map[string]any{},
	})
}

// setLoopbackUp sets lo up in the network namespace at path. It runs on
// a locked thread that it switches into the namespace and never back:
// the thread ends with its goroutine.
func setLoopbackUp(path string) error {
	ns, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: Go discards the thread
		if _, _, errno := syscall.RawSyscall(sysSetns, ns.Fd(), syscall.CLONE_NEWNET, 0); errno != 0 {
			errc <- fmt.Errorf("enter %s: %w", path, errno)
			return
		}
		errc <- ifUp("lo")
	}()
	return <-errc
}

// ifreqFlags is struct ifreq with the ifr_flags member (40 bytes).
type ifreqFlags struct {
	name  [syscall.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// ifUp sets the IFF_UP flag of the interface name in the thread's
// network namespace, as `ip link set name up` does.
func ifUp(name string) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer syscall.Close(fd)
	var ifr ifreqFlags
	copy(ifr.name[:], name)
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("flags of %s: %w", name, errno)
	}
	if ifr.flags&syscall.IFF_UP != 0 {
		return nil
	}
	ifr.flags |= syscall.IFF_UP
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return fmt.Errorf("set %s up: %w", name, errno)
	}
	return nil
}
