package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
)

var tcpEchoCmd = command{
	name:    "tcp-echo",
	summary: "TCP server that sends back whatever each connection sends",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		port := fs.Int("port", 9000, "TCP port to listen on")
		return func(ctx context.Context, _ []string) error {
			ln, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "tcp-echo listening on %s\n", ln.Addr())
			stop := context.AfterFunc(ctx, func() { ln.Close() })
			defer stop()
			for {
				c, err := ln.Accept()
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				go func() {
					defer c.Close()
					n, _ := io.Copy(c, c)
					fmt.Fprintf(e.stdout, "tcp-echo: %s: echoed %d bytes\n", c.RemoteAddr(), n)
				}()
			}
		}
	},
}
