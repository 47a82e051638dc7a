package authz

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// memPolicy is an in-memory Policy, as a watch cache would serve it.
type memPolicy struct {
	mu           sync.Mutex
	roles        map[string]*rbacv1.Role // namespace/name
	clusterRoles map[string]*rbacv1.ClusterRole
	rbs          []*rbacv1.RoleBinding
	crbs         []*rbacv1.ClusterRoleBinding
	lists        int
}

func newMemPolicy() *memPolicy {
	return &memPolicy{roles: map[string]*rbacv1.Role{}, clusterRoles: map[string]*rbacv1.ClusterRole{}}
}

// withDefaults adds the default policy.
func (p *memPolicy) withDefaults() *memPolicy {
	for _, r := range DefaultClusterRoles() {
		p.addClusterRole(r)
	}
	for _, b := range DefaultClusterRoleBindings() {
		p.addClusterRoleBinding(b)
	}
	return p
}

func (p *memPolicy) addRole(r *rbacv1.Role) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roles[r.Namespace+"/"+r.Name] = r
}

func (p *memPolicy) addClusterRole(r *rbacv1.ClusterRole) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clusterRoles[r.Name] = r
}

func (p *memPolicy) addRoleBinding(b *rbacv1.RoleBinding) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rbs = append(p.rbs, b)
}

func (p *memPolicy) addClusterRoleBinding(b *rbacv1.ClusterRoleBinding) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.crbs = append(p.crbs, b)
}

func (p *memPolicy) GetRole(namespace, name string) (*rbacv1.Role, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.roles[namespace+"/"+name]; ok {
		return r, nil
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("roles"), name)
}

func (p *memPolicy) GetClusterRole(name string) (*rbacv1.ClusterRole, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.clusterRoles[name]; ok {
		return r, nil
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("clusterroles"), name)
}

func (p *memPolicy) ListRoleBindings(namespace string) ([]*rbacv1.RoleBinding, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lists++
	var out []*rbacv1.RoleBinding
	for _, b := range p.rbs {
		if b.Namespace == namespace {
			out = append(out, b)
		}
	}
	return out, nil
}

func (p *memPolicy) ListClusterRoleBindings() ([]*rbacv1.ClusterRoleBinding, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lists++
	return append([]*rbacv1.ClusterRoleBinding(nil), p.crbs...), nil
}

// podGraph is an in-memory NodeGraph.
type podGraph []*corev1.Pod

func (g podGraph) PodsOnNode(node string) ([]*corev1.Pod, error) {
	var out []*corev1.Pod
	for _, p := range g {
		if p.Spec.NodeName == node {
			out = append(out, p)
		}
	}
	return out, nil
}

func userInfo(name string, groups ...string) user.Info {
	return &user.DefaultInfo{Name: name, Groups: append([]string{user.AllAuthenticated}, groups...)}
}

func roleBinding(ns, name, roleKind, role string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: roleKind, Name: role},
		Subjects:   subjects,
	}
}

func clusterRoleBinding(name, role string, subjects ...rbacv1.Subject) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   subjects,
	}
}

func userSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
}

func groupSubject(name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: name}
}

func saSubject(ns, name string) rbacv1.Subject {
	return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
}

// volumeGraph adds claims' volumes (by namespace/name) to a podGraph.
type volumeGraph struct {
	podGraph
	claims map[string]string
}

func (g volumeGraph) VolumeOfClaim(namespace, name string) (string, error) {
	return g.claims[namespace+"/"+name], nil
}
