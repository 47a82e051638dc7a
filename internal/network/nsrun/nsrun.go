// Package nsrun runs a function inside a network namespace without
// letting the namespace leak into other goroutines: the function runs on
// a fresh, locked OS thread that is switched back afterwards, or
// discarded when that fails.
package nsrun

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// In runs fn on a fresh locked OS thread switched into ns (netns.None():
// fn itself switches, as netns.NewNamed does), and switches the thread
// back. If that fails the thread is never unlocked, so Go discards it and
// no other goroutine runs in the wrong namespace. Sockets fn opens and
// processes it starts belong to the namespace.
func In(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		if ns.IsOpen() {
			if err := netns.Set(ns); err != nil {
				errc <- fmt.Errorf("enter netns: %w", err)
				return
			}
		}
		err = fn()
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// At runs fn as In does, in the network namespace at path (e.g.
// /var/run/netns/NAME).
func At(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	defer target.Close()
	if err := In(target, fn); err != nil {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	return nil
}
