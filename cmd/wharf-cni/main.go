// Command wharf-cni is the CNI plugin of Wharf's pod network: containerd
// executes it for every pod sandbox, and it forwards the request to the
// node's agent (see internal/network/cniplugin). `make build` puts it next
// to the wharf binary, where the agent looks for it.
package main

import (
	"os"

	"wharf.dev/wharf/internal/network/cniplugin"
)

func main() {
	if err := cniplugin.Run(os.Environ(), os.Stdin, os.Stdout); err != nil {
		os.Exit(1)
	}
}
