package resources

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Environment variables and the downward API selectors they and volumes use.

var envFieldPaths = []string{
	"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
	"status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
}

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		ip := p.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else {
			errs = append(errs, messages(ip.Child("name"), ev.Name, validation.IsEnvVarName(ev.Name))...)
		}
		errs = append(errs, validateEnvValueFrom(ev, ip.Child("valueFrom"))...)
	}
	return errs
}

func validateEnvValueFrom(ev corev1.EnvVar, p *field.Path) field.ErrorList {
	vf := ev.ValueFrom
	if vf == nil {
		return nil
	}
	var errs field.ErrorList
	n := 0
	if vf.FieldRef != nil {
		n++
		errs = append(errs, validateObjectFieldSelector(vf.FieldRef, envFieldPaths, p.Child("fieldRef"))...)
	}
	if vf.ResourceFieldRef != nil {
		n++
		errs = append(errs, validateResourceFieldSelector(vf.ResourceFieldRef, false, p.Child("resourceFieldRef"))...)
	}
	if s := vf.ConfigMapKeyRef; s != nil {
		n++
		errs = append(errs, validateKeySelector(s.Name, s.Key, p.Child("configMapKeyRef"))...)
	}
	if s := vf.SecretKeyRef; s != nil {
		n++
		errs = append(errs, validateKeySelector(s.Name, s.Key, p.Child("secretKeyRef"))...)
	}
	if s := vf.FileKeyRef; s != nil {
		n++
		fp := p.Child("fileKeyRef")
		if s.VolumeName == "" {
			errs = append(errs, field.Required(fp.Child("volumeName"), ""))
		}
		errs = append(errs, validateLocalDescendingPath(s.Path, fp.Child("path"))...)
		if s.Key == "" {
			errs = append(errs, field.Required(fp.Child("key"), ""))
		}
	}
	switch {
	case n == 0:
		errs = append(errs, field.Invalid(p, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"))
	case ev.Value != "":
		errs = append(errs, field.Invalid(p, "", "may not be specified when `value` is not empty"))
	case n > 1:
		errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
	}
	return errs
}

func validateKeySelector(name, key string, p *field.Path) field.ErrorList {
	errs := messages(p.Child("name"), name, nameIsDNSSubdomain(name, false))
	if key == "" {
		return append(errs, field.Required(p.Child("key"), ""))
	}
	return append(errs, messages(p.Child("key"), key, validation.IsConfigMapKey(key))...)
}

func validateEnvFrom(from []corev1.EnvFromSource, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, ef := range from {
		ip := p.Index(i)
		if ef.Prefix != "" {
			errs = append(errs, messages(ip.Child("prefix"), ef.Prefix, validation.IsEnvVarName(ef.Prefix))...)
		}
		n := 0
		if ef.ConfigMapRef != nil {
			n++
			errs = append(errs, validateName(nameIsDNSSubdomain, ef.ConfigMapRef.Name, ip.Child("configMapRef", "name"))...)
		}
		if ef.SecretRef != nil {
			n++
			errs = append(errs, validateName(nameIsDNSSubdomain, ef.SecretRef.Name, ip.Child("secretRef", "name"))...)
		}
		switch {
		case n == 0:
			errs = append(errs, field.Invalid(ip, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ip, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

// validateObjectFieldSelector checks a downward API field reference.
func validateObjectFieldSelector(fs *corev1.ObjectFieldSelector, valid []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch fs.APIVersion {
	case "":
		errs = append(errs, field.Required(p.Child("apiVersion"), ""))
	case "v1":
	default:
		errs = append(errs, field.Invalid(p.Child("apiVersion"), fs.APIVersion, "only version \"v1\" is supported"))
	}
	if fs.FieldPath == "" {
		return append(errs, field.Required(p.Child("fieldPath"), ""))
	}
	fp := p.Child("fieldPath")
	if path, key, ok := splitSubscript(fs.FieldPath); ok {
		switch path {
		case "metadata.annotations":
			errs = append(errs, validateQualifiedName(strings.ToLower(key), fp)...)
		case "metadata.labels":
			errs = append(errs, validateQualifiedName(key, fp)...)
		default:
			errs = append(errs, field.Invalid(fp, path, "does not support subscript"))
		}
		return errs
	}
	if !oneOf(fs.FieldPath, valid...) {
		errs = append(errs, field.NotSupported(fp, fs.FieldPath, valid))
	}
	return errs
}

// splitSubscript splits "metadata.labels['app']" into its path and key.
func splitSubscript(s string) (path, key string, ok bool) {
	if !strings.HasSuffix(s, "']") {
		return s, "", false
	}
	path, rest, found := strings.Cut(s, "['")
	if !found || len(rest) <= 2 {
		return s, "", false
	}
	return path, rest[:len(rest)-2], true
}

var resourceFieldPaths = []string{
	"limits.cpu", "limits.ephemeral-storage", "limits.memory",
	"requests.cpu", "requests.ephemeral-storage", "requests.memory",
}

var (
	cpuDivisors    = []string{"1m", "1"}
	memoryDivisors = []string{"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
)

func validateResourceFieldSelector(fs *corev1.ResourceFieldSelector, needContainer bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if needContainer && fs.ContainerName == "" {
		errs = append(errs, field.Required(p.Child("containerName"), ""))
	}
	hugepages := strings.HasPrefix(fs.Resource, "limits.hugepages-") || strings.HasPrefix(fs.Resource, "requests.hugepages-")
	switch {
	case fs.Resource == "":
		return append(errs, field.Required(p.Child("resource"), ""))
	case !hugepages && !oneOf(fs.Resource, resourceFieldPaths...):
		return append(errs, field.NotSupported(p.Child("resource"), fs.Resource, resourceFieldPaths))
	}
	if fs.Divisor.IsZero() {
		return errs
	}
	valid := memoryDivisors
	if strings.HasSuffix(fs.Resource, ".cpu") {
		valid = cpuDivisors
	}
	for _, d := range valid {
		if fs.Divisor.Cmp(resource.MustParse(d)) == 0 {
			return errs
		}
	}
	return append(errs, field.Invalid(p.Child("divisor"), fs.Divisor.String(),
		fmt.Sprintf("only divisor's values %s are supported with the %s resource", strings.Join(valid, ", "), fs.Resource)))
}
