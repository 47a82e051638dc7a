package authz

import (
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Aggregate returns the rules target gathers through its aggregationRule,
// as the clusterrole-aggregation controller computes them: the rules of
// every other ClusterRole in all whose labels match any of the selectors,
// taken in name order, without duplicates. A target without an
// aggregationRule keeps its rules; a selector that does not parse (which
// validation refuses) matches nothing. The caller stores the result as
// target's rules when it differs, and runs it again when any ClusterRole
// changes: roles aggregating aggregated roles (admin gathers edit, which
// gathers view) settle after a few rounds.
func Aggregate(target *rbacv1.ClusterRole, all []*rbacv1.ClusterRole) []rbacv1.PolicyRule {
	if target.AggregationRule == nil {
		return target.Rules
	}
	var sels []labels.Selector
	for i := range target.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&target.AggregationRule.ClusterRoleSelectors[i])
		if err == nil {
			sels = append(sels, sel)
		}
	}
	var matched []*rbacv1.ClusterRole
	for _, r := range all {
		if r.Name == target.Name {
			continue
		}
		if slices.ContainsFunc(sels, func(s labels.Selector) bool { return s.Matches(labels.Set(r.Labels)) }) {
			matched = append(matched, r)
		}
	}
	slices.SortStableFunc(matched, func(a, b *rbacv1.ClusterRole) int { return strings.Compare(a.Name, b.Name) })
	rules := []rbacv1.PolicyRule{}
	for _, r := range matched {
		for _, rule := range r.Rules {
			if !slices.ContainsFunc(rules, func(have rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(have, rule) }) {
				rules = append(rules, rule)
			}
		}
	}
	return rules
}

// AggregateAll sets the rules of every aggregating role in roles until
// none changes, what the aggregation controller reaches; it reports
// whether any changed.
func AggregateAll(roles []*rbacv1.ClusterRole) bool {
	changed := false
	for range len(roles) + 1 {
		round := false
		for _, r := range roles {
			if r.AggregationRule == nil {
				continue
			}
			if rules := Aggregate(r, roles); !equality.Semantic.DeepEqual(rules, r.Rules) {
				r.Rules, round, changed = rules, true, true
			}
		}
		if !round {
			break
		}
	}
	return changed
}
