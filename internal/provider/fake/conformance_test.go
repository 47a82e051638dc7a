package fake

import (
	"testing"

	"wharf.dev/wharf/internal/provider"
	"wharf.dev/wharf/internal/provider/providertest"
)

func TestConformance(t *testing.T) {
	var first *Provider
	providertest.Run(t, func(t *testing.T) provider.Provider {
		if first == nil {
			first = New()
			return first
		}
		return first.Reopen()
	}, providertest.Options{NoProcesses: true})
}
