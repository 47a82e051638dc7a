//go:build integration

package integration

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

func resourceMust(s string) resource.Quantity { return resource.MustParse(s) }

func contains1(s, sub string) bool { return strings.Contains(s, sub) }
