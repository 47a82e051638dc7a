package resources

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestPodDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   func(*corev1.Pod)
		want func(*corev1.Pod)
	}{{
		name: "minimal",
	}, {
		name: "latest and untagged images pull always",
		in: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers,
				corev1.Container{Name: "a", Image: "busybox"},
				corev1.Container{Name: "b", Image: "registry:5000/busybox:latest"},
				corev1.Container{Name: "c", Image: "busybox@sha256:" + hex64},
				corev1.Container{Name: "d", Image: "busybox", ImagePullPolicy: corev1.PullNever})
		},
		want: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers,
				defaultedContainer("a", "busybox", corev1.PullAlways),
				defaultedContainer("b", "registry:5000/busybox:latest", corev1.PullAlways),
				defaultedContainer("c", "busybox@sha256:"+hex64, corev1.PullIfNotPresent),
				defaultedContainer("d", "busybox", corev1.PullNever))
		},
	}, {
		name: "ports, probes, requests from limits",
		in: func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.Ports = []corev1.ContainerPort{{ContainerPort: 80}}
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(80)}}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}}
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
			c.Env = []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}
		},
		want: func(p *corev1.Pod) {
			c := &p.Spec.Containers[0]
			c.Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: corev1.ProtocolTCP}}
			c.LivenessProbe = &corev1.Probe{
				ProbeHandler:   corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80), Scheme: corev1.URISchemeHTTP}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			}
			c.ReadinessProbe = &corev1.Probe{
				ProbeHandler:   corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000, Service: ptrTo("")}},
				TimeoutSeconds: 1, PeriodSeconds: 10, SuccessThreshold: 1, FailureThreshold: 3,
			}
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}
			c.Env = []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}}
		},
	}, {
		name: "volumes",
		in: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "scratch"},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec"}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}},
			}
		},
		want: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: ptrTo(int32(0644))}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: ptrTo(int32(0644))}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data", Type: ptrTo(corev1.HostPathUnset)}}},
			}
		},
	}, {
		name: "host network ports",
		in: func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
		},
		want: func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 8080, Protocol: corev1.ProtocolTCP}}
		},
	}, {
		name: "set values are kept",
		in: func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.DNSPolicy = corev1.DNSDefault
			p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(5))
			p.Spec.SchedulerName = "other"
			p.Spec.EnableServiceLinks = ptrTo(false)
		},
		want: func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.DNSPolicy = corev1.DNSDefault
			p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(5))
			p.Spec.SchedulerName = "other"
			p.Spec.EnableServiceLinks = ptrTo(false)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newPod()
			if tt.in != nil {
				tt.in(got)
			}
			Pods().Default(got)
			want := &corev1.Pod{
				ObjectMeta: newPod().ObjectMeta,
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{defaultedContainer("nginx", "nginx:1.27", corev1.PullIfNotPresent)},
					RestartPolicy:                 corev1.RestartPolicyAlways,
					TerminationGracePeriodSeconds: ptrTo(int64(30)),
					DNSPolicy:                     corev1.DNSClusterFirst,
					SecurityContext:               &corev1.PodSecurityContext{},
					SchedulerName:                 corev1.DefaultSchedulerName,
					EnableServiceLinks:            ptrTo(true),
				},
			}
			if tt.want != nil {
				tt.want(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaulted pod (-want +got):\n%s", diff)
			}
			again := got.DeepCopy()
			Pods().Default(again)
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("defaulting is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func defaultedContainer(name, image string, pull corev1.PullPolicy) corev1.Container {
	return corev1.Container{
		Name: name, Image: image, ImagePullPolicy: pull,
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
}

func TestPodValidate(t *testing.T) {
	port := func(n int32) corev1.ContainerPort {
		return corev1.ContainerPort{ContainerPort: n, Protocol: corev1.ProtocolTCP}
	}
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []wantErr
	}{
		{name: "minimal is valid", mutate: func(*corev1.Pod) {}},
		{name: "full is valid", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "data"},
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "a", Path: "dir/a"}}}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
			}
			c := &p.Spec.Containers[0]
			c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP, HostPort: 5353}}
			c.Env = []corev1.EnvVar{
				{Name: "PLAIN", Value: "x"},
				{Name: "my.env-name", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
				{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			}
			c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/etc/cfg", ReadOnly: true}}
			c.Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("128Mi"), "example.com/gpu": resource.MustParse("1")},
			}
			c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}}
			c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, InitialDelaySeconds: 3}
			c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 5}}}
			p.Spec.InitContainers = []corev1.Container{
				{Name: "init", Image: "busybox:1.36", Command: []string{"true"}},
				{Name: "sidecar", Image: "registry.local:5000/team/proxy@sha256:" + hex64, RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways),
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ok"}}}}},
			}
			p.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
			p.Spec.Tolerations = []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(300))},
				{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "web", Effect: corev1.TaintEffectNoSchedule},
				{Operator: corev1.TolerationOpExists},
			}
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}}},
				}}},
			}}
			p.Spec.ActiveDeadlineSeconds = ptrTo(int64(600))
			p.Spec.Hostname, p.Spec.Subdomain = "web-0", "web"
			p.Spec.ServiceAccountName = "builder"
		}},
		{name: "bad name", mutate: func(p *corev1.Pod) { p.Name = "Web_1" }, want: []wantErr{invalid("metadata.name")}},
		{name: "no namespace", mutate: func(p *corev1.Pod) { p.Namespace = "" }, want: []wantErr{required("metadata.namespace")}},
		{name: "bad label", mutate: func(p *corev1.Pod) { p.Labels["bad key"] = "v" }, want: []wantErr{invalid("metadata.labels")}},
		{name: "no containers", mutate: func(p *corev1.Pod) { p.Spec.Containers = nil }, want: []wantErr{required("spec.containers")}},
		{name: "container name not a DNS label", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "Nginx_1" }, want: []wantErr{invalid("spec.containers[0].name")}},
		{name: "container name missing", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }, want: []wantErr{required("spec.containers[0].name")}},
		{name: "duplicate container names", mutate: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0])
		}, want: []wantErr{duplicate("spec.containers[1].name")}},
		{name: "init container named like a container", mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{p.Spec.Containers[0]}
		}, want: []wantErr{duplicate("spec.initContainers[0].name")}},
		{name: "image missing", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, want: []wantErr{required("spec.containers[0].image")}},
		{name: "image colons", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:::1" }, want: []wantErr{invalid("spec.containers[0].image")}},
		{name: "image uppercase", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "Nginx" }, want: []wantErr{invalid("spec.containers[0].image")}},
		{name: "image space", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "a b" }, want: []wantErr{invalid("spec.containers[0].image")}},
		{name: "image padded", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = " nginx" }, want: []wantErr{invalid("spec.containers[0].image")}},
		{name: "containerPort missing", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{port(0)} }, want: []wantErr{required("spec.containers[0].ports[0].containerPort")}},
		{name: "containerPort too big", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Ports = []corev1.ContainerPort{port(65536)} }, want: []wantErr{invalid("spec.containers[0].ports[0].containerPort")}},
		{name: "hostPort negative", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: -1, Protocol: corev1.ProtocolTCP}}
		}, want: []wantErr{invalid("spec.containers[0].ports[0].hostPort")}},
		{name: "protocol unknown", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "HTTP"}}
		}, want: []wantErr{notSupported("spec.containers[0].ports[0].protocol")}},
		{name: "port names duplicate", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80, Protocol: "TCP"}, {Name: "http", ContainerPort: 81, Protocol: "TCP"}}
		}, want: []wantErr{duplicate("spec.containers[0].ports[1].name")}},
		{name: "port name not IANA_SVC_NAME", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http-", ContainerPort: 80, Protocol: "TCP"}}
		}, want: []wantErr{invalid("spec.containers[0].ports[0].name")}},
		{name: "host ports conflict", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", Image: "b", ImagePullPolicy: "Always", TerminationMessagePolicy: "File",
				Ports: []corev1.ContainerPort{{ContainerPort: 81, HostPort: 8080, Protocol: "TCP"}}})
		}, want: []wantErr{duplicate("spec.containers[1].ports[0].hostPort")}},
		{name: "hostNetwork hostPort differs", mutate: func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 8080, Protocol: "TCP"}}
		}, want: []wantErr{invalid("spec.containers[0].ports[0].hostPort")}},
		{name: "env name starts with digit", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "1ST"}} }, want: []wantErr{invalid("spec.containers[0].env[0].name")}},
		{name: "env name with equals", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B"}} }, want: []wantErr{invalid("spec.containers[0].env[0].name")}},
		{name: "env name missing", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Env = []corev1.EnvVar{{Value: "x"}} }, want: []wantErr{required("spec.containers[0].env[0].name")}},
		{name: "valueFrom without source", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{}}}
		}, want: []wantErr{invalid("spec.containers[0].env[0].valueFrom")}},
		{name: "valueFrom with two sources", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef:     &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"},
			}}}
		}, want: []wantErr{invalid("spec.containers[0].env[0].valueFrom")}},
		{name: "valueFrom and value", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}}}}
		}, want: []wantErr{invalid("spec.containers[0].env[0].valueFrom")}},
		{name: "fieldRef unsupported", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.containers"}}}}
		}, want: []wantErr{notSupported("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath")}},
		{name: "secretKeyRef without key", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}}
		}, want: []wantErr{required("spec.containers[0].env[0].valueFrom.secretKeyRef.key")}},
		{name: "envFrom without source", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "X_"}}
		}, want: []wantErr{invalid("spec.containers[0].envFrom[0]")}},
		{name: "negative request", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")}
		}, want: []wantErr{invalid("spec.containers[0].resources.requests[cpu]")}},
		{name: "negative limit", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("-1Mi")}
		}, want: []wantErr{invalid("spec.containers[0].resources.limits[memory]")}},
		{name: "request above limit", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
			}
		}, want: []wantErr{invalid("spec.containers[0].resources.requests[memory]")}},
		{name: "extended resource overcommitted", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{"example.com/gpu": resource.MustParse("1")},
				Limits:   corev1.ResourceList{"example.com/gpu": resource.MustParse("2")},
			}
		}, want: []wantErr{invalid("spec.containers[0].resources.requests[example.com/gpu]")}},
		{name: "unknown resource", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"gpu": resource.MustParse("1")}
		}, want: []wantErr{invalid("spec.containers[0].resources.limits[gpu]")}},
		{name: "volume names duplicate", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v"}, {Name: "v"}}
		}, want: []wantErr{duplicate("spec.volumes[1].name")}},
		{name: "volume name invalid", mutate: func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "V_1"}} }, want: []wantErr{invalid("spec.volumes[0].name")}},
		{name: "volume with two sources", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}
		}, want: []wantErr{forbidden("spec.volumes[0].secret")}},
		{name: "configMap volume without name", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}}
		}, want: []wantErr{required("spec.volumes[0].configMap.name")}},
		{name: "secret volume mode too big", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptrTo(int32(01000))}}}}
		}, want: []wantErr{invalid("spec.volumes[0].secret.defaultMode")}},
		{name: "item path escapes", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s",
				Items: []corev1.KeyToPath{{Key: "k", Path: "../etc/passwd"}}}}}}
		}, want: []wantErr{invalid("spec.volumes[0].secret.items[0].path")}},
		{name: "mount of unknown volume", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}
		}, want: []wantErr{notFound("spec.containers[0].volumeMounts[0].name")}},
		{name: "mount without path", mutate: func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "v"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "v"}}
		}, want: []wantErr{required("spec.containers[0].volumeMounts[0].mountPath")}},
		{name: "restartPolicy unknown", mutate: func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, want: []wantErr{notSupported("spec.restartPolicy")}},
		{name: "dnsPolicy unknown", mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" }, want: []wantErr{notSupported("spec.dnsPolicy")}},
		{name: "dnsPolicy None without config", mutate: func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, want: []wantErr{required("spec.dnsConfig")}},
		{name: "imagePullPolicy unknown", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }, want: []wantErr{notSupported("spec.containers[0].imagePullPolicy")}},
		{name: "probe with two handlers", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				Exec: &corev1.ExecAction{Command: []string{"true"}}, TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, SuccessThreshold: 1}
		}, want: []wantErr{forbidden("spec.containers[0].livenessProbe.tcpSocket")}},
		{name: "probe without handler", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{}
		}, want: []wantErr{required("spec.containers[0].readinessProbe")}},
		{name: "probe negative period", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, PeriodSeconds: -1}
		}, want: []wantErr{invalid("spec.containers[0].readinessProbe.periodSeconds")}},
		{name: "probe bad port", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Scheme: "HTTP", Port: intstr.FromInt32(0)}}}
		}, want: []wantErr{invalid("spec.containers[0].readinessProbe.httpGet.port")}},
		{name: "liveness successThreshold", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}, SuccessThreshold: 2}
		}, want: []wantErr{invalid("spec.containers[0].livenessProbe.successThreshold")}},
		{name: "probe on plain init container", mutate: func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ImagePullPolicy: "Always", TerminationMessagePolicy: "File",
				LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(80)}}}}}
		}, want: []wantErr{forbidden("spec.initContainers[0].livenessProbe")}},
		{name: "restartPolicy on regular container", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
		}, want: []wantErr{forbidden("spec.containers[0].restartPolicy")}},
		{name: "toleration operator unknown", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: "Maybe"}}
		}, want: []wantErr{notSupported("spec.tolerations[0].operator")}},
		{name: "toleration effect unknown", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: "Sometimes"}}
		}, want: []wantErr{notSupported("spec.tolerations[0].effect")}},
		{name: "tolerationSeconds without NoExecute", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptrTo(int64(5))}}
		}, want: []wantErr{invalid("spec.tolerations[0].effect")}},
		{name: "toleration Exists with value", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Value: "v"}}
		}, want: []wantErr{invalid("spec.tolerations[0].operator")}},
		{name: "toleration empty key with Equal", mutate: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpEqual, Value: "v"}}
		}, want: []wantErr{invalid("spec.tolerations[0].operator")}},
		{name: "nodeSelector bad key", mutate: func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"bad key": "x"} }, want: []wantErr{invalid("spec.nodeSelector")}},
		{name: "nodeSelector bad value", mutate: func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"k": "bad value"} }, want: []wantErr{invalid("spec.nodeSelector")}},
		{name: "node affinity operator unknown", mutate: func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: "Near", Values: []string{"a"}}}}}}}}
		}, want: []wantErr{invalid("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator")}},
		{name: "node affinity In without values", mutate: func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn}}}}}}}
		}, want: []wantErr{required("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values")}},
		{name: "node affinity without terms", mutate: func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
		}, want: []wantErr{required("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")}},
		{name: "negative grace period", mutate: func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(-1)) }, want: []wantErr{invalid("spec.terminationGracePeriodSeconds")}},
		{name: "zero active deadline", mutate: func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(0)) }, want: []wantErr{invalid("spec.activeDeadlineSeconds")}},
		{name: "bad service account name", mutate: func(p *corev1.Pod) { p.Spec.ServiceAccountName = "Bad_SA" }, want: []wantErr{invalid("spec.serviceAccountName")}},
		{name: "ephemeral containers", mutate: func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}, want: []wantErr{forbidden("spec.ephemeralContainers")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrs(t, Pods().Validate(defaultedPod(tt.mutate)), tt.want...)
		})
	}
}

func TestPodVolumeWithoutSourceIsInvalid(t *testing.T) {
	// Defaulting turns a bare volume into an emptyDir; validation alone rejects it.
	pod := defaultedPod()
	pod.Spec.Volumes = []corev1.Volume{{Name: "v"}}
	checkErrs(t, Pods().Validate(pod), required("spec.volumes[0]"))
}
