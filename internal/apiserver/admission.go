package apiserver

import (
	"context"
	"errors"
	"fmt"
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
// a reservation in etcd (package servicealloc, req.svc) decides, so
// several servers on one etcd never hand out the same value.
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
	usedIPs, usedPorts := map[netip.Addr]bool{}, map[int32]bool{}
	for _, o := range page.Items {
		other := o.(*corev1.Service)
		if other.UID == svc.UID && svc.UID != "" {
			continue
		}
		for _, ip := range other.Spec.ClusterIPs {
			if a, err := netip.ParseAddr(ip); err == nil {
				usedIPs[a] = true
			}
		}
		for _, p := range other.Spec.Ports {
			usedPorts[p.NodePort] = true
		}
		usedPorts[other.Spec.HealthCheckNodePort] = true
	}
	cidr := s.cfg.Admission.ServiceCIDR
	var errs field.ErrorList
	ipPath := field.NewPath("spec", "clusterIPs").Index(0)
	switch ip := svc.Spec.ClusterIP; {
	case svc.Spec.Type == corev1.ServiceTypeExternalName, ip == corev1.ClusterIPNone:
	case ip == "":
		first := svc.Namespace == "default" && svc.Name == "kubernetes"
		v, ok, err := w.pick(ctx, servicealloc.ClusterIPs,
			func(v string) bool { a, _ := netip.ParseAddr(v); return usedIPs[a] || !cidr.Contains(a) },
			func(v string) { a, _ := netip.ParseAddr(v); usedIPs[a] = true },
			func() (string, bool) { a, ok := freeIP(cidr, usedIPs, first); return a.String(), ok })
		if err != nil {
			return err
		}
		if !ok {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: range is full (%s)", cidr))
		}
		svc.Spec.ClusterIP = v
	default:
		a, err := netip.ParseAddr(ip)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(ipPath, ip, "must be a valid IP address"))
		case !cidr.Contains(a):
			errs = append(errs, field.Invalid(ipPath, ip, "provided IP is not in the valid range. The range of valid IPs is "+cidr.String()))
		case usedIPs[a] && (old == nil || old.Spec.ClusterIP != ip):
			errs = append(errs, field.Invalid(ipPath, ip, "provided IP is already allocated"))
		default:
			if err := w.take(ctx, ipKey(a)); errors.Is(err, servicealloc.ErrTaken) {
				errs = append(errs, field.Invalid(ipPath, ip, "provided IP is already allocated"))
			} else if err != nil {
				return apierrors.NewInternalError(err)
			}
		}
	}
	if svc.Spec.ClusterIP != "" {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		cfg := s.cfg.Admission
		for i := range svc.Spec.Ports {
			p := &svc.Spec.Ports[i]
			path := field.NewPath("spec", "ports").Index(i).Child("nodePort")
			switch {
			case p.NodePort == 0:
				n, err := w.pickPort(ctx, cfg, usedPorts)
				if err != nil {
					return err
				}
				p.NodePort = n
			case p.NodePort < cfg.NodePortMin || p.NodePort > cfg.NodePortMax:
				errs = append(errs, field.Invalid(path, p.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", cfg.NodePortMin, cfg.NodePortMax)))
			case usedPorts[p.NodePort] && !hadNodePort(old, p.NodePort):
				errs = append(errs, field.Invalid(path, p.NodePort, "provided port is already allocated"))
			default:
				if err := w.take(ctx, portKey(p.NodePort)); errors.Is(err, servicealloc.ErrTaken) {
					errs = append(errs, field.Invalid(path, p.NodePort, "provided port is already allocated"))
				} else if err != nil {
					return apierrors.NewInternalError(err)
				}
			}
			usedPorts[p.NodePort] = true
		}
	}
	hc, err := s.allocateHealthCheckNodePort(ctx, w, svc, old, usedPorts)
	if err != nil {
		return err
	}
	errs = append(errs, hc...)
	if len(errs) > 0 {
		return invalid(req, svc.Name, errs)
	}
	return nil
}

// pickPort reserves a free node port, or fails as Kubernetes does when
// the range is full.
func (w *serviceWrite) pickPort(ctx context.Context, cfg AdmissionConfig, used map[int32]bool) (int32, error) {
	parse := func(v string) int32 { n, _ := strconv.Atoi(v); return int32(n) }
	v, ok, err := w.pick(ctx, servicealloc.NodePorts,
		func(v string) bool { n := parse(v); return used[n] || n < cfg.NodePortMin || n > cfg.NodePortMax },
		func(v string) { used[parse(v)] = true },
		func() (string, bool) {
			n, ok := freePort(cfg.NodePortMin, cfg.NodePortMax, used)
			return strconv.Itoa(int(n)), ok
		})
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: range is full (%d-%d)", cfg.NodePortMin, cfg.NodePortMax))
	}
	return parse(v), nil
}

// allocateHealthCheckNodePort gives a LoadBalancer service with
// externalTrafficPolicy Local the node port its load balancer checks
// each node on (the node agents serve it), keeps it across updates and
// drops it from any other service.
func (s *Server) allocateHealthCheckNodePort(ctx context.Context, w *serviceWrite, svc, old *corev1.Service, used map[int32]bool) (field.ErrorList, error) {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		svc.Spec.HealthCheckNodePort = 0
		return nil, nil
	}
	cfg := s.cfg.Admission
	path := field.NewPath("spec", "healthCheckNodePort")
	switch p := svc.Spec.HealthCheckNodePort; {
	case p == 0 && old != nil && old.Spec.HealthCheckNodePort != 0:
		svc.Spec.HealthCheckNodePort = old.Spec.HealthCheckNodePort
		if err := w.take(ctx, portKey(svc.Spec.HealthCheckNodePort)); err != nil && !errors.Is(err, servicealloc.ErrTaken) {
			return nil, apierrors.NewInternalError(err)
		}
	case p == 0:
		n, err := w.pickPort(ctx, cfg, used)
		if err != nil {
			return nil, err
		}
		svc.Spec.HealthCheckNodePort = n
	case p < cfg.NodePortMin || p > cfg.NodePortMax:
		return field.ErrorList{field.Invalid(path, p, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", cfg.NodePortMin, cfg.NodePortMax))}, nil
	case used[p] && (old == nil || old.Spec.HealthCheckNodePort != p):
		return field.ErrorList{field.Invalid(path, p, "provided port is already allocated")}, nil
	default:
		if err := w.take(ctx, portKey(p)); errors.Is(err, servicealloc.ErrTaken) {
			return field.ErrorList{field.Invalid(path, p, "provided port is already allocated")}, nil
		} else if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
	}
	used[svc.Spec.HealthCheckNodePort] = true
	return nil, nil
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
