package authz

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	rbacv1 "k8s.io/api/rbac/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Policy is the RBAC objects the authorizer reads, usually from the
// caller's watch cache. A missing role is an error (reported in the reason
// of a NoOpinion, as upstream does); the other bindings still count.
type Policy interface {
	GetRole(namespace, name string) (*rbacv1.Role, error)
	GetClusterRole(name string) (*rbacv1.ClusterRole, error)
	ListRoleBindings(namespace string) ([]*rbacv1.RoleBinding, error)
	ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error)
}

// RBAC is Kubernetes' RBAC authorizer over a Policy. It keeps the bindings
// indexed by subject, with their roles' rules, until Invalidate.
type RBAC struct {
	policy Policy
	gen    atomic.Uint64
	mu     sync.Mutex // serializes rebuilding the snapshot
	snap   atomic.Pointer[snapshot]
}

var (
	_ authorizer.Authorizer   = (*RBAC)(nil)
	_ authorizer.RuleResolver = (*RBAC)(nil)
)

// NewRBAC returns an RBAC authorizer reading p.
func NewRBAC(p Policy) *RBAC { return &RBAC{policy: p} }

// Invalidate drops what the authorizer knows of the policy. Call it after
// any Role, ClusterRole, RoleBinding or ClusterRoleBinding changed in what
// the Policy returns (from the watch's event handler); the next request
// reads the Policy again.
func (a *RBAC) Invalidate() { a.gen.Add(1) }

// grant is one subject of one binding, with its role's rules.
type grant struct {
	order   int // the binding's position in its listing
	subj    int // the subject's position in the binding
	rules   []rbacv1.PolicyRule
	err     error // resolving the role
	kind    string
	binding string // name, or name/namespace for a RoleBinding
	ref     *rbacv1.RoleRef
	subject *rbacv1.Subject
	saNS    string                 // a ServiceAccount subject's namespace
	reason  atomic.Pointer[string] // formatted at the first allow
}

// allowReason is upstream's: RBAC: allowed by ClusterRoleBinding "x" of
// ClusterRole "y" to User "z".
func (g *grant) allowReason() string {
	if r := g.reason.Load(); r != nil {
		return *r
	}
	subject := fmt.Sprintf("%s %q", g.subject.Kind, g.subject.Name)
	if g.subject.Kind == rbacv1.ServiceAccountKind {
		subject = fmt.Sprintf("%s %q", g.subject.Kind, g.subject.Name+"/"+g.saNS)
	}
	r := fmt.Sprintf("RBAC: allowed by %s %q of %s %q to %s", g.kind, g.binding, g.ref.Kind, g.ref.Name, subject)
	g.reason.Store(&r)
	return r
}

// subjects indexes the grants of one scope (the cluster or a namespace).
type subjects struct {
	users  map[string][]*grant // User subjects and ServiceAccount usernames
	groups map[string][]*grant
	empty  bool
}

type snapshot struct {
	gen        uint64
	cluster    subjects
	namespaces sync.Map // namespace -> *subjects
	empties    atomic.Int64
}

func newSubjects() subjects {
	return subjects{users: map[string][]*grant{}, groups: map[string][]*grant{}, empty: true}
}

// add indexes the subjects of the binding at position order; bindingNS is
// "" for a ClusterRoleBinding, whose ServiceAccount subjects must name a
// namespace.
func (s *subjects) add(order int, kind, name, bindingNS string, ref *rbacv1.RoleRef, subs []rbacv1.Subject, rules []rbacv1.PolicyRule, err error) {
	for i := range subs {
		sub := &subs[i]
		g := &grant{order: order, subj: i, rules: rules, err: err, kind: kind, binding: name, ref: ref, subject: sub}
		switch sub.Kind {
		case rbacv1.UserKind:
			s.users[sub.Name] = append(s.users[sub.Name], g)
		case rbacv1.GroupKind:
			s.groups[sub.Name] = append(s.groups[sub.Name], g)
		case rbacv1.ServiceAccountKind:
			g.saNS = cmp.Or(sub.Namespace, bindingNS)
			if g.saNS == "" {
				continue
			}
			// Upstream matches "system:serviceaccount:<ns>:<name>", the
			// username of the account's tokens.
			u := serviceaccount.MakeUsername(g.saNS, sub.Name)
			s.users[u] = append(s.users[u], g)
		default:
			continue
		}
		s.empty = false
	}
}

// match appends to buf the grants applying to u, in listing order, one per
// binding (its first matching subject, as upstream reports).
func (s *subjects) match(u user.Info, buf []*grant) []*grant {
	start := len(buf)
	buf = append(buf, s.users[u.GetName()]...)
	for _, g := range u.GetGroups() {
		buf = append(buf, s.groups[g]...)
	}
	m := buf[start:]
	if len(m) < 2 {
		return buf
	}
	slices.SortFunc(m, func(a, b *grant) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.subj, b.subj))
	})
	m = slices.CompactFunc(m, func(a, b *grant) bool { return a.order == b.order })
	return buf[:start+len(m)]
}

// current returns the snapshot of the policy, building it if it was
// invalidated. A snapshot whose listing failed is used once, not kept.
func (a *RBAC) current() (*snapshot, error) {
	if s := a.snap.Load(); s != nil && s.gen == a.gen.Load() {
		return s, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	gen := a.gen.Load()
	if s := a.snap.Load(); s != nil && s.gen == gen {
		return s, nil
	}
	s := &snapshot{gen: gen, cluster: newSubjects()}
	crbs, err := a.policy.ListClusterRoleBindings()
	if err != nil {
		return s, err
	}
	for i, b := range crbs {
		rules, err := a.roleRules(b.RoleRef, "")
		s.cluster.add(i, "ClusterRoleBinding", b.Name, "", &b.RoleRef, b.Subjects, rules, err)
	}
	a.snap.Store(s)
	return s, nil
}

// maxEmptyNamespaces bounds how many namespaces without RoleBindings a
// snapshot remembers, as requests may name namespaces that do not exist.
const maxEmptyNamespaces = 10000

var noSubjects = &subjects{}

// namespace returns the index of the RoleBindings in ns.
func (a *RBAC) namespace(s *snapshot, ns string) (*subjects, error) {
	if v, ok := s.namespaces.Load(ns); ok {
		return v.(*subjects), nil
	}
	rbs, err := a.policy.ListRoleBindings(ns)
	if err != nil {
		return nil, err
	}
	idx := newSubjects()
	for i, b := range rbs {
		rules, err := a.roleRules(b.RoleRef, ns)
		idx.add(i, "RoleBinding", b.Name+"/"+ns, ns, &b.RoleRef, b.Subjects, rules, err)
	}
	if idx.empty {
		if s.empties.Add(1) > maxEmptyNamespaces {
			return noSubjects, nil
		}
		v, _ := s.namespaces.LoadOrStore(ns, noSubjects)
		return v.(*subjects), nil
	}
	v, _ := s.namespaces.LoadOrStore(ns, &idx)
	return v.(*subjects), nil
}

// roleRules resolves a binding's roleRef; bindingNS is "" for a
// ClusterRoleBinding.
func (a *RBAC) roleRules(ref rbacv1.RoleRef, bindingNS string) ([]rbacv1.PolicyRule, error) {
	switch ref.Kind {
	case "Role":
		r, err := a.policy.GetRole(bindingNS, ref.Name)
		if err != nil {
			return nil, err
		}
		return r.Rules, nil
	case "ClusterRole":
		r, err := a.policy.GetClusterRole(ref.Name)
		if err != nil {
			return nil, err
		}
		return r.Rules, nil
	}
	return nil, fmt.Errorf("unsupported role reference kind: %q", ref.Kind)
}

// visit calls fn with each grant applying to u in namespace: the
// ClusterRoleBindings', then (if namespace is not "") the RoleBindings' of
// namespace, until fn returns false. It returns the errors met on the way.
func (a *RBAC) visit(u user.Info, namespace string, fn func(*grant) bool) []error {
	var errs []error
	s, err := a.current()
	if err != nil {
		errs = append(errs, err)
	}
	var arr [16]*grant
	if !visitGrants(s.cluster.match(u, arr[:0]), fn, &errs) || namespace == "" {
		return errs
	}
	idx, err := a.namespace(s, namespace)
	if err != nil {
		return append(errs, err)
	}
	visitGrants(idx.match(u, arr[:0]), fn, &errs)
	return errs
}

func visitGrants(gs []*grant, fn func(*grant) bool, errs *[]error) bool {
	for _, g := range gs {
		if g.err != nil {
			*errs = append(*errs, g.err)
			continue
		}
		if !fn(g) {
			return false
		}
	}
	return true
}

// Authorize allows a request some binding of the user grants, with the
// reason naming it; otherwise it has no opinion (the reason lists errors
// resolving the policy, if any).
func (a *RBAC) Authorize(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	u := attrs.GetUser()
	if u == nil {
		return authorizer.DecisionNoOpinion, "", nil
	}
	reason := ""
	errs := a.visit(u, attrs.GetNamespace(), func(g *grant) bool {
		if RulesAllow(attrs, g.rules...) {
			reason = g.allowReason()
			return false
		}
		return true
	})
	if reason != "" {
		return authorizer.DecisionAllow, reason, nil
	}
	if len(errs) > 0 {
		return authorizer.DecisionNoOpinion, fmt.Sprintf("RBAC: %v", utilerrors.NewAggregate(errs)), nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// ConditionsAwareAuthorize is Authorize; RBAC has no conditional decisions.
func (a *RBAC) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

// EvaluateConditions is not supported: RBAC never returns conditions.
func (a *RBAC) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// PolicyRules returns the rules u holds in namespace ("" for those of
// ClusterRoleBindings only). With an error the rules may be incomplete, but
// each one returned is held.
func (a *RBAC) PolicyRules(u user.Info, namespace string) ([]rbacv1.PolicyRule, error) {
	var rules []rbacv1.PolicyRule
	errs := a.visit(u, namespace, func(g *grant) bool {
		rules = append(rules, g.rules...)
		return true
	})
	return rules, utilerrors.NewAggregate(errs)
}

// RulesFor lists u's rules in namespace for a SelfSubjectRulesReview, as
// upstream does: never marked incomplete, with the errors met.
func (a *RBAC) RulesFor(_ context.Context, u user.Info, namespace string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	rules, err := a.PolicyRules(u, namespace)
	var res []authorizer.ResourceRuleInfo
	var nonRes []authorizer.NonResourceRuleInfo
	for _, r := range rules {
		if len(r.Resources) > 0 {
			res = append(res, &authorizer.DefaultResourceRuleInfo{
				Verbs: r.Verbs, APIGroups: r.APIGroups, Resources: r.Resources, ResourceNames: r.ResourceNames,
			})
		}
		if len(r.NonResourceURLs) > 0 {
			nonRes = append(nonRes, &authorizer.DefaultNonResourceRuleInfo{Verbs: r.Verbs, NonResourceURLs: r.NonResourceURLs})
		}
	}
	return res, nonRes, false, err
}
