package main

import (
	"context"
	"flag"
	"fmt"
	"net"
)

var udpEchoCmd = command{
	name:    "udp-echo",
	summary: "UDP server that sends every datagram back to its sender",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		port := fs.Int("port", 9000, "UDP port to listen on")
		return func(ctx context.Context, _ []string) error {
			pc, err := net.ListenPacket("udp", fmt.Sprintf(":%d", *port))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "udp-echo listening on %s\n", pc.LocalAddr())
			stop := context.AfterFunc(ctx, func() { pc.Close() })
			defer stop()
			buf := make([]byte, 64<<10)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if _, err := pc.WriteTo(buf[:n], from); err != nil {
					fmt.Fprintf(e.stdout, "udp-echo: %s: %v\n", from, err)
					continue
				}
				fmt.Fprintf(e.stdout, "udp-echo: %s: echoed %d bytes\n", from, n)
			}
		}
	},
}
