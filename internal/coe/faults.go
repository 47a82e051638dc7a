package coe

import (
	"context"
	"crypto/x509"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"
)

// Waiting is for slowness only: a step that meets a permanent error (a
// host whose process died, a control plane answering with another CA)
// fails within seconds with the reason, instead of at the create timeout.

// hostWatchPeriod is how often the provider is asked about the hosts a
// step waits for.
const hostWatchPeriod = 250 * time.Millisecond

// hostFault: hosts a step waits for are dead, and the provider says why.
type hostFault struct{ faults map[string]string }

func (f *hostFault) Error() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(f.faults)) {
		parts = append(parts, "host "+name+": "+f.faults[name])
	}
	return strings.Join(parts, "; ")
}

// watchHosts returns a context that ends, with a *hostFault as its cause,
// as soon as the provider reports one of the named hosts dead with a
// fault; stop ends the watch.
func (c *Controller) watchHosts(ctx context.Context, e *env, names []string) (context.Context, func()) {
	wctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := c.clock.NewTicker(hostWatchPeriod)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C():
			}
			hosts, err := e.prov.ListHosts(wctx, e.ref)
			if err != nil {
				continue // the provider's trouble: the step's own wait decides
			}
			faults := map[string]string{}
			for _, h := range hosts {
				if !h.Running && h.Fault != "" && slices.Contains(names, h.Name) {
					faults[h.Name] = h.Fault
				}
			}
			if len(faults) > 0 {
				cancel(&hostFault{faults: faults})
				return
			}
		}
	}()
	return wctx, func() { cancel(nil); <-done }
}

// faultsOf returns the per-host faults in err, if it is a host fault.
func faultsOf(err error) map[string]string {
	var hf *hostFault
	if errors.As(err, &hf) {
		return hf.faults
	}
	return nil
}

// permanentAPIError says whether an answer of a cluster's API means it
// will never be the one expected: its certificate is not signed by the
// cluster's CA (another server has the address) or is not for it.
func permanentAPIError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}
