package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"
)

var dnsLookupCmd = command{
	name:    "dns-lookup",
	args:    "NAME",
	summary: "resolve NAME with the pod's resolver and print its addresses, one a line; status 1 if none",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
		return func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("want one NAME, got %q", args)
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			// The pure Go resolver reads /etc/resolv.conf (search
			// domains, ndots) as a pod's libc would.
			addrs, err := net.DefaultResolver.LookupHost(ctx, args[0])
			if err != nil {
				return fmt.Errorf("lookup %s: %w", args[0], err)
			}
			if len(addrs) == 0 {
				return fmt.Errorf("lookup %s: no addresses", args[0])
			}
			for _, a := range addrs {
				fmt.Fprintln(e.stdout, a)
			}
			return nil
		}
	},
}
