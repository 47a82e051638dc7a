package scheduler

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// fieldNodeName is the only field Kubernetes allows in matchFields.
const fieldNodeName = "metadata.name"

// requirement is one compiled matchExpressions or matchFields entry.
type requirement struct {
	key    string
	op     corev1.NodeSelectorOperator
	values []string
	num    int64 // the operand of Gt and Lt
}

// selectorTerm is a compiled NodeSelectorTerm. An invalid term, or one with
// no requirement at all, matches no node, as in Kubernetes.
type selectorTerm struct {
	labels []requirement
	fields []requirement
	valid  bool
}

// nodeSelector is compiled required node affinity: its terms are ORed.
type nodeSelector struct {
	terms []selectorTerm
}

type preferredTerm struct {
	weight int64
	term   selectorTerm
}

func compileNodeSelector(ns *corev1.NodeSelector) *nodeSelector {
	s := &nodeSelector{terms: make([]selectorTerm, 0, len(ns.NodeSelectorTerms))}
	for i := range ns.NodeSelectorTerms {
		s.terms = append(s.terms, compileTerm(&ns.NodeSelectorTerms[i]))
	}
	return s
}

func compilePreferred(terms []corev1.PreferredSchedulingTerm) []preferredTerm {
	var out []preferredTerm
	for i := range terms {
		if terms[i].Weight == 0 {
			continue
		}
		out = append(out, preferredTerm{
			weight: int64(terms[i].Weight),
			term:   compileTerm(&terms[i].Preference),
		})
	}
	return out
}

func compileTerm(t *corev1.NodeSelectorTerm) selectorTerm {
	st := selectorTerm{valid: len(t.MatchExpressions)+len(t.MatchFields) > 0}
	for _, e := range t.MatchExpressions {
		r, ok := compileLabelRequirement(e)
		st.valid = st.valid && ok
		st.labels = append(st.labels, r)
	}
	for _, e := range t.MatchFields {
		ok := e.Key == fieldNodeName && len(e.Values) == 1 &&
			(e.Operator == corev1.NodeSelectorOpIn || e.Operator == corev1.NodeSelectorOpNotIn)
		st.valid = st.valid && ok
		st.fields = append(st.fields, requirement{key: e.Key, op: e.Operator, values: e.Values})
	}
	return st
}

// compileLabelRequirement validates the operand count the way label
// selectors do, so a malformed term fails closed instead of matching.
func compileLabelRequirement(e corev1.NodeSelectorRequirement) (requirement, bool) {
	r := requirement{key: e.Key, op: e.Operator, values: e.Values}
	switch e.Operator {
	case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn:
		return r, len(e.Values) > 0
	case corev1.NodeSelectorOpExists, corev1.NodeSelectorOpDoesNotExist:
		return r, len(e.Values) == 0
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if len(e.Values) != 1 {
			return r, false
		}
		n, err := strconv.ParseInt(e.Values[0], 10, 64)
		r.num = n
		return r, err == nil
	}
	return r, false
}

func (s *nodeSelector) matches(n *nodeInfo) bool {
	for i := range s.terms {
		if s.terms[i].matches(n) {
			return true
		}
	}
	return false
}

func (t *selectorTerm) matches(n *nodeInfo) bool {
	if !t.valid {
		return false
	}
	for i := range t.labels {
		if !t.labels[i].matchesLabels(n.labels) {
			return false
		}
	}
	for i := range t.fields {
		in := t.fields[i].values[0] == n.name
		if in != (t.fields[i].op == corev1.NodeSelectorOpIn) {
			return false
		}
	}
	return true
}

func (r *requirement) matchesLabels(labels map[string]string) bool {
	v, ok := labels[r.key]
	switch r.op {
	case corev1.NodeSelectorOpIn:
		return ok && slices.Contains(r.values, v)
	case corev1.NodeSelectorOpNotIn:
		return !ok || !slices.Contains(r.values, v)
	case corev1.NodeSelectorOpExists:
		return ok
	case corev1.NodeSelectorOpDoesNotExist:
		return !ok
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !ok {
			return false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		if r.op == corev1.NodeSelectorOpGt {
			return n > r.num
		}
		return n < r.num
	}
	return false
}

// matchesNodeSelector is the NodeAffinity filter: spec.nodeSelector and the
// required node affinity must both hold.
func matchesNodeSelector(p *podInfo, n *nodeInfo) bool {
	for k, v := range p.nodeSelector {
		if lv, ok := n.labels[k]; !ok || lv != v {
			return false
		}
	}
	return p.required == nil || p.required.matches(n)
}

// preferredAffinity is the raw NodeAffinity score: the summed weights of the
// preferred terms the node matches.
func preferredAffinity(p *podInfo, n *nodeInfo) int64 {
	var sum int64
	for i := range p.preferred {
		if p.preferred[i].term.matches(n) {
			sum += p.preferred[i].weight
		}
	}
	return sum
}
