package pods

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
)

func TestContainerConfig(t *testing.T) {
	pod := testPod("web", func(p *v1.Pod) {
		c := &p.Spec.Containers[0]
		c.Command = []string{"/bin/server", "--name=$(NAME)"}
		c.Args = []string{"$(GREETING)", "$(UNSET)"}
		c.WorkingDir = "/srv"
		c.Stdin, c.TTY = true, true
		c.Resources = v1.ResourceRequirements{
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("64Mi")},
			Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("128Mi")},
		}
		c.VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
	})
	in := containerInputs{
		pod: pod, container: &pod.Spec.Containers[0], attempt: 3, imageRef: "sha256:abc",
		env:     []envVar{{"NAME", "web"}, {"GREETING", "hi"}},
		volumes: map[string]string{"data": "/var/lib/wharf/pods/uid-web/volumes/data"},
		layout:  testLayout, qos: v1.PodQOSBurstable, memoryCapacity: 1 << 30,
		hostsFile: "/var/lib/wharf/pods/uid-web/etc-hosts",
	}
	got, subDirs, err := containerConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: "app", Attempt: 3},
		Image:      &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: testImage},
		Command:    []string{"/bin/server", "--name=web"},
		Args:       []string{"hi", "$(UNSET)"},
		WorkingDir: "/srv",
		Envs:       []*runtimeapi.KeyValue{{Key: "NAME", Value: []byte("web")}, {Key: "GREETING", Value: []byte("hi")}},
		Mounts: []*runtimeapi.Mount{
			{ContainerPath: "/data", HostPath: "/var/lib/wharf/pods/uid-web/volumes/data"},
			{ContainerPath: "/etc/hosts", HostPath: "/var/lib/wharf/pods/uid-web/etc-hosts"},
			{ContainerPath: "/dev/termination-log", HostPath: "/var/lib/wharf/pods/uid-web/containers/app/3"},
		},
		Labels: map[string]string{labelPodName: "web", labelPodNamespace: "default", labelPodUID: "uid-web", labelContainerName: "app"},
		Annotations: map[string]string{
			annotationHash:                     specHash(&pod.Spec.Containers[0]),
			annotationRestartCount:             "3",
			annotationTerminationMessagePath:   "/dev/termination-log",
			annotationTerminationMessagePolicy: "File",
			annotationGracePeriod:              "30",
		},
		LogPath: "app/3.log",
		Stdin:   true,
		Tty:     true,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources: &runtimeapi.LinuxContainerResources{
				CpuShares: 256, CpuPeriod: 100000, CpuQuota: 50000,
				MemoryLimitInBytes: 128 << 20, OomScoreAdj: 938,
			},
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
				MaskedPaths:      defaultMaskedPaths,
				ReadonlyPaths:    defaultReadonlyPaths,
			},
		},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("container config (-want +got):\n%s", diff)
	}
	if len(subDirs) != 0 {
		t.Errorf("subDirs %v", subDirs)
	}
}

func TestContainerMounts(t *testing.T) {
	vols := map[string]string{"data": "/v/data", "cfg": "/v/cfg"}
	tests := []struct {
		name    string
		mounts  []v1.VolumeMount
		hosts   string
		tmPath  string
		want    []*runtimeapi.Mount
		subDirs []string
		wantErr bool
	}{
		{
			name: "subPath, subPathExpr, read-only and propagation",
			mounts: []v1.VolumeMount{
				{Name: "data", MountPath: "/a", SubPath: "x/y"},
				{Name: "data", MountPath: "/b", SubPathExpr: "$(POD_NAME)"},
				{Name: "cfg", MountPath: "/c", ReadOnly: true, MountPropagation: ptr.To(v1.MountPropagationHostToContainer)},
			},
			want: []*runtimeapi.Mount{
				{ContainerPath: "/a", HostPath: "/v/data/x/y"},
				{ContainerPath: "/b", HostPath: "/v/data/web"},
				{ContainerPath: "/c", HostPath: "/v/cfg", Readonly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			},
			subDirs: []string{"/v/data/x/y", "/v/data/web"},
		},
		{
			name:   "a volume at /etc/hosts or the termination path replaces the agent's files",
			mounts: []v1.VolumeMount{{Name: "cfg", MountPath: "/etc/hosts"}, {Name: "data", MountPath: "/tmp/msg"}},
			hosts:  "/p/etc-hosts",
			tmPath: "/tmp/msg",
			want:   []*runtimeapi.Mount{{ContainerPath: "/etc/hosts", HostPath: "/v/cfg"}, {ContainerPath: "/tmp/msg", HostPath: "/v/data"}},
		},
		{
			name:   "hosts file and termination message",
			hosts:  "/p/etc-hosts",
			tmPath: "/dev/termination-log",
			want: []*runtimeapi.Mount{
				{ContainerPath: "/etc/hosts", HostPath: "/p/etc-hosts"},
				{ContainerPath: "/dev/termination-log", HostPath: "/var/lib/wharf/pods/uid-web/containers/app/0"},
			},
		},
		{name: "unknown volume", mounts: []v1.VolumeMount{{Name: "nope", MountPath: "/x"}}, wantErr: true},
		{name: "escaping subPath", mounts: []v1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "../etc"}}, wantErr: true},
		{name: "absolute subPath", mounts: []v1.VolumeMount{{Name: "data", MountPath: "/x", SubPath: "/etc"}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("web")
			c := &pod.Spec.Containers[0]
			c.VolumeMounts, c.TerminationMessagePath = tt.mounts, tt.tmPath
			in := containerInputs{pod: pod, container: c, volumes: vols, layout: testLayout, hostsFile: tt.hosts}
			got, subDirs, err := containerMounts(in, envLookup([]envVar{{"POD_NAME", "web"}}))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.subDirs, subDirs); diff != "" {
				t.Errorf("subDirs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerSecurity(t *testing.T) {
	podNS := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	tests := []struct {
		name    string
		psc     *v1.PodSecurityContext
		sc      *v1.SecurityContext
		want    *runtimeapi.LinuxContainerSecurityContext
		wantErr bool
	}{
		{
			name: "defaults mask /proc",
			want: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: podNS, MaskedPaths: defaultMaskedPaths, ReadonlyPaths: defaultReadonlyPaths},
		},
		{
			name: "container fields win over the pod's",
			psc:  &v1.PodSecurityContext{RunAsUser: ptr.To[int64](1000), RunAsGroup: ptr.To[int64](1000), FSGroup: ptr.To[int64](2000)},
			sc: &v1.SecurityContext{
				RunAsUser: ptr.To[int64](1001), ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
				Capabilities:   &v1.Capabilities{Add: []v1.Capability{"NET_ADMIN"}, Drop: []v1.Capability{"ALL"}},
				SeccompProfile: &v1.SeccompProfile{Type: v1.SeccompProfileTypeRuntimeDefault},
			},
			want: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions:   podNS,
				RunAsUser:          &runtimeapi.Int64Value{Value: 1001},
				RunAsGroup:         &runtimeapi.Int64Value{Value: 1000},
				SupplementalGroups: []int64{2000},
				ReadonlyRootfs:     true,
				NoNewPrivs:         true,
				Capabilities:       &runtimeapi.Capability{AddCapabilities: []string{"NET_ADMIN"}, DropCapabilities: []string{"ALL"}},
				Seccomp:            &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
				MaskedPaths:        defaultMaskedPaths,
				ReadonlyPaths:      defaultReadonlyPaths,
			},
		},
		{
			name: "privileged sees all of /proc",
			sc:   &v1.SecurityContext{Privileged: ptr.To(true)},
			want: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: podNS, Privileged: true},
		},
		{
			name:    "runAsNonRoot with uid 0",
			psc:     &v1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
			sc:      &v1.SecurityContext{RunAsUser: ptr.To[int64](0)},
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := testPod("sec")
			pod.Spec.SecurityContext = tt.psc
			pod.Spec.Containers[0].SecurityContext = tt.sc
			got, err := containerSecurity(pod, &pod.Spec.Containers[0])
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
