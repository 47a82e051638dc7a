package openapi

import (
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	smd "sigs.k8s.io/structured-merge-diff/v6/schema"
)

// The +listType, +listMapKey, +mapType and +structType markers of the
// built-in types are comments, gone at run time. client-go carries what
// they say in the structured-merge-diff schema of its apply
// configurations; mergeTypes reads it from there.

// fieldMerge is how a list or map field merges.
type fieldMerge struct {
	listType string   // atomic, set or map
	keys     []string // list-map-keys of a map list
	mapType  string   // atomic for a map field merged as a whole
	def      any      // the +default marker's value
}

// mergeInfo is what the schema says, by definition name.
type mergeInfo struct {
	atomicStructs map[string]bool
	fields        map[string]map[string]fieldMerge
}

var builtinMerge = sync.OnceValue(func() *mergeInfo {
	// Any built-in kind gives the typed value whose schema is the whole set.
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	tv, err := applyconfigurations.NewTypeConverter(scheme.Scheme).ObjectToTyped(u)
	if err != nil {
		return &mergeInfo{}
	}
	return newMergeInfo(tv.Schema())
})

func newMergeInfo(s *smd.Schema) *mergeInfo {
	m := &mergeInfo{atomicStructs: map[string]bool{}, fields: map[string]map[string]fieldMerge{}}
	for _, td := range s.Types {
		if td.Map == nil {
			continue
		}
		if td.Map.ElementRelationship == smd.Atomic && len(td.Map.Fields) > 0 {
			m.atomicStructs[td.Name] = true
		}
		fields := map[string]fieldMerge{}
		for _, f := range td.Map.Fields {
			atom, ok := s.Resolve(f.Type)
			if !ok {
				continue
			}
			if f.Default != nil && atom.Scalar != nil {
				fields[f.Name] = fieldMerge{def: f.Default}
			}
			switch {
			case atom.List != nil:
				fm := fieldMerge{listType: "atomic"}
				if atom.List.ElementRelationship == smd.Associative {
					if len(atom.List.Keys) > 0 {
						fm = fieldMerge{listType: "map", keys: atom.List.Keys}
					} else {
						fm.listType = "set"
					}
				}
				fields[f.Name] = fm
			case atom.Map != nil && f.Type.NamedType == nil && atom.Map.ElementRelationship == smd.Atomic:
				// An inline map (map[string]string); named types are
				// structs, described on their own definitions.
				fields[f.Name] = fieldMerge{mapType: "atomic"}
			}
		}
		if len(fields) > 0 {
			m.fields[td.Name] = fields
		}
	}
	return m
}
