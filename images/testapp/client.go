package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

var clientCmd = command{
	name:    "client",
	summary: "GET --url in a loop, printing each answer's status and body; status 1 if the last request failed",
	define: func(fs *flag.FlagSet, e env) func(context.Context, []string) error {
		url := fs.String("url", "", "URL to call (required)")
		interval := fs.Duration("interval", time.Second, "pause between requests")
		count := fs.Int("count", 0, "number of requests; 0: until stopped")
		timeout := fs.Duration("timeout", 5*time.Second, "timeout of each request")
		return func(ctx context.Context, _ []string) error {
			if *url == "" {
				return fmt.Errorf("--url is required")
			}
			c := &http.Client{Timeout: *timeout}
			var last error
			for i := 0; *count == 0 || i < *count; i++ {
				if i > 0 {
					t := time.NewTimer(*interval)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return nil
					}
				}
				last = get(ctx, c, *url, e)
				if ctx.Err() != nil {
					return nil
				}
			}
			if last != nil {
				return exitCode(1)
			}
			return nil
		}
	},
}

// get calls url once and prints "STATUS BODY" or "error: ...".
func get(ctx context.Context, c *http.Client, url string, e env) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(e.stdout, "error: %v\n", err)
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		fmt.Fprintf(e.stdout, "error: %v\n", err)
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		fmt.Fprintf(e.stdout, "error: reading body: %v\n", err)
		return err
	}
	fmt.Fprintf(e.stdout, "%d %s\n", resp.StatusCode, bytes.TrimSpace(body))
	return nil
}
