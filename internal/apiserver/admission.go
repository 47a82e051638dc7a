package apiserver

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"strconv"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"wharf.dev/wharf/internal/authz"
	"wharf.dev/wharf/internal/servicealloc"
	"wharf.dev/wharf/internal/storage"
	"wharf.dev/wharf/internal/wire"
)

// AdmissionConfig holds the settings of the built-in admission steps.
type AdmissionConfig struct {
	// NotReadyTolerationSeconds and UnreachableTolerationSeconds are the
	// tolerationSeconds of the NoExecute tolerations every pod gets for the
	// not-ready and unreachable taints: how long its node may be gone before
	// the pod is evicted (Kubernetes: 300 s).
	NotReadyTolerationSeconds    int64
	UnreachableTolerationSeconds int64
	// ServiceCIDR is where services' cluster IPs come from; its first
	// address belongs to the "kubernetes" service.
	ServiceCIDR netip.Prefix
	// NodePortMin and NodePortMax bound services' node ports.
	NodePortMin, NodePortMax int32
}

// DefaultAdmission returns Wharf's defaults.
func DefaultAdmission() AdmissionConfig {
	return AdmissionConfig{
		NotReadyTolerationSeconds: 3, UnreachableTolerationSeconds: 3,
		ServiceCIDR: netip.MustParsePrefix(wire.DefaultServiceCIDR), NodePortMin: 30000, NodePortMax: 32767,
	}
}

func (s *Server) admitCreate(ctx context.Context, req *request, obj runtime.Object) error {
	if req.res.Namespaced {
		if err := s.checkNamespace(ctx, req.namespace); err != nil {
			return err
		}
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		s.admitPod(o)
		return s.mountServiceAccountToken(ctx, o)
	case *corev1.Service:
		return s.allocateService(ctx, req, o, nil)
	case *certificatesv1.CertificateSigningRequest:
		setRequestor(ctx, o)
	case *corev1.PersistentVolumeClaim:
		return s.admitPersistentVolumeClaim(ctx, o)
	case *corev1.PersistentVolume:
		addFinalizer(&o.Finalizers, pvProtectionFinalizer)
	}
	return nil
}

func (s *Server) admitUpdate(ctx context.Context, req *request, obj, cur runtime.Object) error {
	if svc, ok := obj.(*corev1.Service); ok {
		return s.allocateService(ctx, req, svc, cur.(*corev1.Service))
	}
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		return s.admitClaimResize(ctx, pvc, cur.(*corev1.PersistentVolumeClaim))
	}
	return nil
}

// admitKind runs the escalation checks of roles and bindings and the
// kind's own cross-object check (Resource.Admit) on a create (cur nil) or
// a main-resource update, once the object is valid: reading other objects
// for an invalid one would only add noise.
func (s *Server) admitKind(ctx context.Context, req *request, obj, cur runtime.Object) error {
	if err := s.guardRBAC(ctx, req, obj, cur); err != nil {
		return err
	}
	if u, ok := UserFrom(ctx); ok && s.authz != nil && cur == nil {
		// A node creates only its own Node and Lease.
		if err := authz.AdmitNodeCreate(userInfo(u), obj); err != nil {
			return err
		}
	}
	if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && cur == nil {
		if err := admitCSRSubject(csr); err != nil {
			return err
		}
	}
	if req.res.Admit == nil {
		return nil
	}
	if m, err := meta.Accessor(obj); err == nil && m.GetDeletionTimestamp() != nil {
		return nil // finishing a deletion (finalizers) must not be held up
	}
	return req.res.Admit(ctx, obj, cur, storeObjects{s})
}

// checkNamespace refuses new objects in a namespace that is missing or being deleted.
func (s *Server) checkNamespace(ctx context.Context, name string) error {
	obj, err := s.get1(ctx, corev1.SchemeGroupVersion.WithResource("namespaces"), "", name)
	if err != nil {
		return err
	}
	if ns := obj.(*corev1.Namespace); ns.DeletionTimestamp != nil {
		se := apierrors.NewForbidden(corev1.Resource("namespaces"), name,
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", name))
		se.ErrStatus.Details.Causes = append(se.ErrStatus.Details.Causes, metaCause("NamespaceTerminating", name))
		return se
	}
	return nil
}

// admitPod sets the service account and the default eviction tolerations.
func (s *Server) admitPod(pod *corev1.Pod) {
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	pod.Spec.DeprecatedServiceAccount = pod.Spec.ServiceAccountName
	cfg := s.cfg.Admission
	for _, t := range []struct {
		key     string
		seconds int64
	}{
		{corev1.TaintNodeNotReady, cfg.NotReadyTolerationSeconds},
		{corev1.TaintNodeUnreachable, cfg.UnreachableTolerationSeconds},
	} {
		tolerated := false
		for _, tol := range pod.Spec.Tolerations {
			keyMatch := tol.Key == t.key || (tol.Key == "" && tol.Operator == corev1.TolerationOpExists)
			if keyMatch && (tol.Effect == "" || tol.Effect == corev1.TaintEffectNoExecute) {
				tolerated = true
			}
		}
		if !tolerated {
			secs := t.seconds
			pod.Spec.Tolerations = append(pod.Spec.Tolerations, corev1.Toleration{
				Key: t.key, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs,
			})
		}
	}
}

// allocateService gives a service its cluster IP and node ports. The
// services this server's cache holds say what is taken as a first guess;
// reservations in etcd (package servicealloc, req.svc), all of one write
// in one transaction, decide, so several servers on one etcd never hand
// out the same value. A value someone reserved meanwhile is picked again.
func (s *Server) allocateService(ctx context.Context, req *request, svc, old *corev1.Service) error {
	if old != nil && svc.Spec.ClusterIP == "" && old.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.Type != corev1.ServiceTypeExternalName {
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = old.Spec.ClusterIP, old.Spec.ClusterIPs
	}
	if old != nil && (svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer) {
		keepNodePorts(svc, old)
	}
	w := req.svc
	if w != nil {
		w.owner, w.old = ownerOf(svc), old
	}
	page, err := s.store.List(ctx, resourcePrefix(req.res), storage.ListOptions{})
	if err != nil {
		return err
	}
	a := &allocation{s: s, w: w, svc: svc, old: old, usedIPs: map[netip.Addr]bool{}, usedPorts: map[int32]bool{}}
	for _, o := range page.Items {
		other := o.(*corev1.Service)
		if other.UID == svc.UID && svc.UID != "" {
			continue
		}
		for _, ip := range other.Spec.ClusterIPs {
			if addr, err := netip.ParseAddr(ip); err == nil {
				a.usedIPs[addr] = true
			}
		}
		for _, p := range other.Spec.Ports {
			a.usedPorts[p.NodePort] = true
		}
		a.usedPorts[other.Spec.HealthCheckNodePort] = true
	}
	// Each attempt starts from the request's spec and what others use;
	// values found taken join the latter.
	orig, usedIPs, usedPorts := svc.Spec.DeepCopy(), a.usedIPs, a.usedPorts
	for attempt := 1; ; attempt++ {
		svc.Spec = *orig.DeepCopy()
		a.usedIPs, a.usedPorts = maps.Clone(usedIPs), maps.Clone(usedPorts)
		a.wants = a.wants[:0]
		if err := a.assign(); err != nil {
			return err
		}
		if len(a.errs) > 0 {
			return invalid(req, svc.Name, a.errs)
		}
		taken, err := w.reserve(ctx, a.wants)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		if len(taken) == 0 {
			return nil
		}
		for _, t := range taken {
			switch {
			case t.path != nil:
				a.errs = append(a.errs, field.Invalid(t.path, t.value, t.taken))
			case t.key.Range == servicealloc.ClusterIPs:
				ip, _ := netip.ParseAddr(t.key.Value)
				usedIPs[ip] = true
			default:
				p, _ := strconv.Atoi(t.key.Value)
				usedPorts[int32(p)] = true
			}
		}
		if len(a.errs) > 0 {
			return invalid(req, svc.Name, a.errs)
		}
		switch attempt {
		case 8:
			// Many collisions (other servers, or leaked reservations):
			// every reservation counts as used from now on.
			if err := a.markReserved(ctx, usedIPs, usedPorts); err != nil {
				return apierrors.NewInternalError(err)
			}
		case 20:
			return apierrors.NewInternalError(fmt.Errorf("service %s/%s: values taken by other servers 20 times in a row", svc.Namespace, svc.Name))
		}
	}
}

// allocation is one attempt at a service's values.
type allocation struct {
	s         *Server
	w         *serviceWrite
	svc, old  *corev1.Service
	usedIPs   map[netip.Addr]bool
	usedPorts map[int32]bool
	// wants are the values to reserve; errs the invalid ones.
	wants []want
	errs  field.ErrorList
}

// want is a value to reserve. An explicit one (path set) that is
// taken is the field's error; another is picked again.
type want struct {
	key   servicealloc.Key
	path  *field.Path
	value any
	taken string
}

func (a *allocation) assign() error {
	svc, old, cidr := a.svc, a.old, a.s.cfg.Admission.ServiceCIDR
	a.errs = nil
	ipPath := field.NewPath("spec", "clusterIPs").Index(0)
	switch ip := svc.Spec.ClusterIP; {
	case svc.Spec.Type == corev1.ServiceTypeExternalName, ip == corev1.ClusterIPNone:
	case ip == "":
		v, ok := a.w.reuse(servicealloc.ClusterIPs, func(v string) bool { ip, _ := netip.ParseAddr(v); return !a.usedIPs[ip] && cidr.Contains(ip) })
		if !ok {
			first := svc.Namespace == "default" && svc.Name == "kubernetes"
			ip, ok := freeIP(cidr, a.usedIPs, first)
			if !ok && first && old == nil {
				// Servers starting together each create it: the address
				// is taken when the name is.
				return apierrors.NewAlreadyExists(corev1.Resource("services"), svc.Name)
			}
			if !ok {
				return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range is full (%s)", cidr))
			}
			v = ip.String()
		}
		svc.Spec.ClusterIP = v
		a.wants = append(a.wants, want{key: servicealloc.Key{Range: servicealloc.ClusterIPs, Value: v}})
	default:
		addr, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
			a.errs = append(a.errs, field.Invalid(ipPath, ip, "must be a valid IP address"))
		case !cidr.Contains(addr):
			a.errs = append(a.errs, field.Invalid(ipPath, ip, "provided IP is not in the valid range. The range of valid IPs is "+cidr.String()))
		case old != nil && old.Spec.ClusterIP == ip:
			// kept: the service holds it already
		case a.usedIPs[addr]:
			a.errs = append(a.errs, field.Invalid(ipPath, ip, "provided IP is already allocated"))
		default:
			a.wants = append(a.wants, want{key: ipKey(addr), path: ipPath, value: ip, taken: "provided IP is already allocated"})
		}
	}
	if svc.Spec.ClusterIP != "" {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			n, err := a.nodePort(p.NodePort, field.NewPath("spec", "ports").Index(i).Child("nodePort"), hadNodePort(old, p.NodePort))
			if err != nil {
				return err
			}
			p.NodePort = n
		}
	}
	return a.healthCheckNodePort()
}

// nodePort checks an explicit node port (held: the old service had it)
// or picks one for 0.
func (a *allocation) nodePort(p int32, path *field.Path, held bool) (int32, error) {
	cfg := a.s.cfg.Admission
	switch {
	case p == 0:
		v, ok := a.w.reuse(servicealloc.NodePorts, func(v string) bool {
			n, _ := strconv.Atoi(v)
			return !a.usedPorts[int32(n)] && int32(n) >= cfg.NodePortMin && int32(n) <= cfg.NodePortMax
		})
		if ok {
			n, _ := strconv.Atoi(v)
			p = int32(n)
		} else if p, ok = freePort(cfg.NodePortMin, cfg.NodePortMax, a.usedPorts); !ok {
			return 0, apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range is full (%d-%d)", cfg.NodePortMin, cfg.NodePortMax))
		}
		a.wants = append(a.wants, want{key: portKey(p)})
	case p < cfg.NodePortMin || p > cfg.NodePortMax:
		a.errs = append(a.errs, field.Invalid(path, p, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", cfg.NodePortMin, cfg.NodePortMax)))
	case held:
	case a.usedPorts[p]:
		a.errs = append(a.errs, field.Invalid(path, p, "provided port is already allocated"))
	default:
		a.wants = append(a.wants, want{key: portKey(p), path: path, value: p, taken: "provided port is already allocated"})
	}
	a.usedPorts[p] = true
	return p, nil
}

// healthCheckNodePort gives a LoadBalancer service with
// externalTrafficPolicy Local the node port its load balancer checks
// each node on (the node agents serve it), keeps it across updates and
// drops it from any other service.
func (a *allocation) healthCheckNodePort() error {
	svc, old := a.svc, a.old
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		svc.Spec.HealthCheckNodePort = 0
		return nil
	}
	p := svc.Spec.HealthCheckNodePort
	if p == 0 && old != nil && old.Spec.HealthCheckNodePort != 0 {
		p = old.Spec.HealthCheckNodePort
	}
	held := old != nil && old.Spec.HealthCheckNodePort == p && p != 0
	n, err := a.nodePort(p, field.NewPath("spec", "healthCheckNodePort"), held)
	svc.Spec.HealthCheckNodePort = n
	return err
}

// markReserved counts every reservation of the service ranges as used.
func (a *allocation) markReserved(ctx context.Context, usedIPs map[netip.Addr]bool, usedPorts map[int32]bool) error {
	if a.w == nil {
		return nil
	}
	for _, r := range []servicealloc.Range{servicealloc.ClusterIPs, servicealloc.NodePorts} {
		all, err := a.s.alloc.List(ctx, r)
		if err != nil {
			return err
		}
		for _, res := range all {
			if res.Owner.UID == a.w.owner.UID {
				continue
			}
			if r == servicealloc.ClusterIPs {
				ip, _ := netip.ParseAddr(res.Key.Value)
				usedIPs[ip] = true
			} else {
				n, _ := strconv.Atoi(res.Key.Value)
				usedPorts[int32(n)] = true
			}
		}
	}
	return nil
}

func keepNodePorts(svc, old *corev1.Service) {
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		for _, op := range old.Spec.Ports {
			if p.NodePort == 0 && op.Port == p.Port && op.Protocol == p.Protocol {
				p.NodePort = op.NodePort
			}
		}
	}
}

func hadNodePort(old *corev1.Service, port int32) bool {
	if old == nil {
		return false
	}
	for _, p := range old.Spec.Ports {
		if p.NodePort == port {
			return true
		}
	}
	return false
}

// freeIP picks an unused address of cidr, starting at a random one so that
// concurrent servers rarely try the same. The first host address is kept
// for the kubernetes service (first true).
func freeIP(cidr netip.Prefix, used map[netip.Addr]bool, first bool) (netip.Addr, bool) {
	base := cidr.Masked().Addr()
	reserved := base.Next()
	if first {
		return reserved, !used[reserved]
	}
	size := uint64(1) << (base.BitLen() - cidr.Bits())
	if size > 1<<20 {
		size = 1 << 20
	}
	start := rand.Uint64N(size)
	for i := uint64(0); i < size; i++ {
		a := addOffset(base, (start+i)%size)
		if !cidr.Contains(a) || a == base || a == reserved || used[a] || !addOffset(a, 1).IsValid() || !cidr.Contains(addOffset(a, 1)) {
			continue // network, reserved, used or broadcast address
		}
		return a, true
	}
	return netip.Addr{}, false
}

func addOffset(a netip.Addr, n uint64) netip.Addr {
	b := a.As16()
	carry := n
	for i := 15; i >= 0 && carry > 0; i-- {
		sum := uint64(b[i]) + carry&0xff
		b[i] = byte(sum)
		carry = carry>>8 + sum>>8
	}
	out := netip.AddrFrom16(b)
	if a.Is4() {
		out = out.Unmap()
	}
	return out
}

func freePort(lo, hi int32, used map[int32]bool) (int32, bool) {
	n := hi - lo + 1
	start := rand.Int32N(n)
	for i := int32(0); i < n; i++ {
		if p := lo + (start+i)%n; !used[p] {
			return p, true
		}
	}
	return 0, false
}
