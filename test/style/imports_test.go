package style

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "wharf.dev/wharf"

// importRules say which packages must not link which: the layering of
// docs/architecture.md. A pattern is an import path, or a path followed by
// "/..." for it and everything under it. Only production code counts
// (go list's Imports, not TestImports), transitively.
var importRules = []struct {
	pkgs      string
	forbidden []string
	why       string
}{
	{
		pkgs:      module + "/internal/storage",
		forbidden: []string{module + "/internal/apiserver"},
		why:       "storage is below the API: the API server uses it, never the other way round",
	},
	{
		pkgs: module + "/internal/agent/...",
		forbidden: []string{
			module + "/internal/storage", module + "/internal/apiserver", module + "/internal/controlplane",
		},
		why: "the agent is an API client on another host: what it shares with the server is in package wire",
	},
	{
		pkgs:      module + "/internal/controllers/...",
		forbidden: []string{module + "/internal/storage"},
		why:       "controllers are API clients: every write goes through the API",
	},
	{
		pkgs:      module + "/internal/scheduler",
		forbidden: []string{module + "/internal/storage"},
		why:       "the scheduler is an API client: every write goes through the API",
	},
	{
		pkgs:      module + "/internal/provider/...",
		forbidden: []string{module + "/internal/coe", module + "/internal/agent/..."},
		why:       "providers make hosts for the cluster controller; what runs on a host is the agent's business, reached through package wire",
	},
	{
		pkgs: module + "/internal/coe",
		forbidden: []string{
			module + "/internal/controlplane", module + "/internal/storage", module + "/internal/apiserver",
			"go.etcd.io/etcd/server/v3/...",
		},
		why: "the cluster controller is an API client of the service and of its clusters; it must not link a server (etcd, storage, the API)",
	},
	{
		pkgs:      module + "/internal/wire",
		forbidden: []string{module + "/..."},
		why:       "wire is the leaf every process imports",
	},
}

// TestImportRules runs go list over the module and fails on a package
// that links one it must not, naming the import chain that brings it in.
func TestImportRules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	graph, err := goListDeps("../..", "./...")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range importRules {
		t.Run(r.pkgs, func(t *testing.T) {
			var roots []string
			for p := range graph {
				if matchPattern(r.pkgs, p) {
					roots = append(roots, p)
				}
			}
			if len(roots) == 0 {
				t.Fatalf("no package matches %s: was it renamed? Update the rule.", r.pkgs)
			}
			slices.Sort(roots)
			for _, root := range roots {
				for _, chain := range forbiddenChains(graph, root, r.forbidden) {
					for i, p := range chain {
						chain[i] = strings.TrimPrefix(p, module+"/")
					}
					t.Errorf("%s must not link %s (%s); it does through %s", chain[0], chain[len(chain)-1], r.why, strings.Join(chain, " -> "))
				}
			}
		})
	}
}

// goListDeps returns each package that patterns need, with its
// production imports, as `go list -deps` sees them from dir.
func goListDeps(dir string, patterns ...string) (map[string][]string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", append([]string{"list", "-deps", "-json=ImportPath,Imports"}, patterns...)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New("go list: " + err.Error() + ": " + stderr.String())
	}
	graph := map[string][]string{}
	dec := json.NewDecoder(&stdout)
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, errors.New("go list output: " + err.Error())
		}
		graph[p.ImportPath] = p.Imports
	}
	return graph, nil
}

// forbiddenChains walks root's imports breadth first and returns, for each
// forbidden package it reaches, the shortest import chain from root to it.
// It does not walk past a forbidden package: what that one brings in is
// the same violation.
func forbiddenChains(graph map[string][]string, root string, forbidden []string) [][]string {
	from := map[string]string{root: ""}
	queue := []string{root}
	var chains [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != root && slices.ContainsFunc(forbidden, func(f string) bool { return matchPattern(f, p) }) {
			chain := []string{p}
			for q := from[p]; q != ""; q = from[q] {
				chain = append(chain, q)
			}
			slices.Reverse(chain)
			chains = append(chains, chain)
			continue
		}
		for _, imp := range graph[p] {
			if _, seen := from[imp]; !seen {
				from[imp] = p
				queue = append(queue, imp)
			}
		}
	}
	return chains
}

// matchPattern reports whether path is pattern, or under it when pattern
// ends in "/...".
func matchPattern(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == pattern
}

func TestForbiddenChains(t *testing.T) {
	graph := map[string][]string{
		"a":     {"b", "c", "fmt"},
		"b":     {"bad/x", "fmt"},
		"c":     {"d"},
		"d":     {"bad"},
		"bad":   {"worse"},
		"bad/x": {},
		"e":     {"a"},
	}
	tests := []struct {
		root      string
		forbidden []string
		want      [][]string
	}{
		{"a", []string{"bad/..."}, [][]string{{"a", "b", "bad/x"}, {"a", "c", "d", "bad"}}},
		{"a", []string{"bad"}, [][]string{{"a", "c", "d", "bad"}}},
		{"a", []string{"bad/x", "worse"}, [][]string{{"a", "b", "bad/x"}, {"a", "c", "d", "bad", "worse"}}},
		{"e", []string{"d"}, [][]string{{"e", "a", "c", "d"}}},
		{"a", []string{"badx"}, nil},
		{"c", []string{"b"}, nil},
		{"bad", []string{"bad/..."}, nil}, // a package never forbids itself
	}
	for _, tt := range tests {
		t.Run(tt.root+" "+strings.Join(tt.forbidden, ","), func(t *testing.T) {
			got := forbiddenChains(graph, tt.root, tt.forbidden)
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("forbiddenChains(%s, %v) = %v, want %v", tt.root, tt.forbidden, got, tt.want)
			}
		})
	}
}
