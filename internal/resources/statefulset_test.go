package resources

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func newStatefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "web",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template:    newTemplate(),
		},
	}
}

func claimTemplate(name string) corev1.PersistentVolumeClaim {
	return corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func TestStatefulSetDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   func(*appsv1.StatefulSet)
		want func(*appsv1.StatefulSet)
	}{{
		name: "minimal",
	}, {
		name: "OnDelete gets no rolling update",
		in:   func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType },
		want: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		},
	}, {
		name: "set values are kept",
		in: func(s *appsv1.StatefulSet) {
			s.Spec.Replicas = ptrTo(int32(0))
			s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo(int32(2))}
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		},
		want: func(s *appsv1.StatefulSet) {
			s.Spec.Replicas = ptrTo(int32(0))
			s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
			s.Spec.UpdateStrategy.RollingUpdate.Partition = ptrTo(int32(2))
			s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
		},
	}, {
		name: "claim templates get a volume mode",
		in: func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
		},
		want: func(s *appsv1.StatefulSet) {
			c := claimTemplate("data")
			c.Spec.VolumeMode = ptrTo(corev1.PersistentVolumeFilesystem)
			c.Status.Phase = corev1.ClaimPending
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{c}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := newStatefulSet()
			if tt.in != nil {
				tt.in(got)
			}
			StatefulSets().Default(got)
			want := newStatefulSet()
			want.Spec.Replicas = ptrTo(int32(1))
			want.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
			want.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo(int32(0))},
			}
			want.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			}
			want.Spec.RevisionHistoryLimit = ptrTo(int32(10))
			want.Spec.Template = defaultedTemplate()
			if tt.want != nil {
				tt.want(want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("defaulted statefulset (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatefulSetValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*appsv1.StatefulSet)
		want   []wantErr
	}{
		{name: "minimal is valid", mutate: func(*appsv1.StatefulSet) {}},
		{name: "parallel, OnDelete, no service is valid", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			s.Spec.ServiceName = ""
		}},
		{name: "a mount of a claim template is valid", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}},
		{name: "a mount of nothing", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		}, want: []wantErr{notFound("spec.template.spec.containers[0].volumeMounts[0].name")}},
		{name: "bad service name", mutate: func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "Web_1" }, want: []wantErr{invalid("spec.serviceName")}},
		{name: "no selector", mutate: func(s *appsv1.StatefulSet) { s.Spec.Selector = nil }, want: []wantErr{required("spec.selector")}},
		{name: "empty selector", mutate: func(s *appsv1.StatefulSet) { s.Spec.Selector = &metav1.LabelSelector{} }, want: []wantErr{invalid("spec.selector")}},
		{name: "selector does not match labels", mutate: func(s *appsv1.StatefulSet) { s.Spec.Template.Labels = map[string]string{"app": "db"} },
			want: []wantErr{invalid("spec.template.metadata.labels")}},
		{name: "template restartPolicy", mutate: func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever },
			want: []wantErr{notSupported("spec.template.spec.restartPolicy")}},
		{name: "negative replicas", mutate: func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptrTo(int32(-1)) }, want: []wantErr{invalid("spec.replicas")}},
		{name: "negative minReadySeconds", mutate: func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = -1 }, want: []wantErr{invalid("spec.minReadySeconds")}},
		{name: "negative ordinals start", mutate: func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: -1} },
			want: []wantErr{invalid("spec.ordinals.start")}},
		{name: "unknown pod management policy", mutate: func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" },
			want: []wantErr{invalid("spec.podManagementPolicy")}},
		{name: "unknown update strategy", mutate: func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = "Recreate" },
			want: []wantErr{invalid("spec.updateStrategy")}},
		{name: "OnDelete with rolling update", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{}}
		}, want: []wantErr{invalid("spec.updateStrategy.rollingUpdate")}},
		{name: "negative partition", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo(int32(-1))}
		}, want: []wantErr{invalid("spec.updateStrategy.rollingUpdate.partition")}},
		{name: "maxUnavailable 0", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ptrTo(intstr.FromInt32(0))}
		}, want: []wantErr{invalid("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{name: "maxUnavailable over 100%", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ptrTo(intstr.FromString("120%"))}
		}, want: []wantErr{invalid("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{name: "maxUnavailable 50% is valid", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: ptrTo(intstr.FromString("50%"))}
		}},
		{name: "unknown retention policy", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Keep", WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType}
		}, want: []wantErr{notSupported("spec.persistentVolumeClaimRetentionPolicy.whenDeleted")}},
		{name: "claim template without storage or name", mutate: func(s *appsv1.StatefulSet) {
			c := claimTemplate("")
			c.Spec.Resources = corev1.VolumeResourceRequirements{}
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{c}
		}, want: []wantErr{required("spec.volumeClaimTemplates[0].metadata.name"), required("spec.volumeClaimTemplates[0].spec.resources[storage]")}},
		{name: "claim templates with one name", mutate: func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data"), claimTemplate("data")}
		}, want: []wantErr{duplicate("spec.volumeClaimTemplates[1].metadata.name")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStatefulSet()
			tt.mutate(s)
			r := StatefulSets()
			r.Default(s)
			checkErrs(t, r.Validate(s), tt.want...)
		})
	}
}

func TestStatefulSetValidateUpdate(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*appsv1.StatefulSet)
		forbidden bool
	}{
		{"replicas", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptrTo(int32(5)) }, false},
		{"template", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:1.28" }, false},
		{"partition", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.RollingUpdate.Partition = ptrTo(int32(2)) }, false},
		{"minReadySeconds", func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = 3 }, false},
		{"ordinals", func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 3} }, false},
		{"retention", func(s *appsv1.StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy.WhenScaled = appsv1.DeletePersistentVolumeClaimRetentionPolicyType
		}, false},
		{"serviceName", func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "other" }, true},
		{"podManagementPolicy", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }, true},
		{"selector", func(s *appsv1.StatefulSet) { s.Spec.Selector.MatchLabels["tier"] = "x" }, true},
		{"volumeClaimTemplates", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{claimTemplate("data")}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := StatefulSets()
			old := newStatefulSet()
			r.Default(old)
			s := old.DeepCopy()
			tt.mutate(s)
			r.Default(s)
			errs := r.ValidateUpdate(s, old)
			if !tt.forbidden {
				checkErrs(t, errs)
				return
			}
			checkErrs(t, errs, forbidden("spec"))
			if !strings.Contains(errs.ToAggregate().Error(), "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden") {
				t.Errorf("message %q is not upstream's", errs.ToAggregate())
			}
		})
	}
}

func TestStatefulSetValidateStatus(t *testing.T) {
	old := newStatefulSet()
	tests := []struct {
		name   string
		status appsv1.StatefulSetStatus
		want   []wantErr
	}{
		{"consistent", appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, CurrentReplicas: 3, UpdatedReplicas: 1}, nil},
		{"negative", appsv1.StatefulSetStatus{Replicas: -1}, []wantErr{invalid("status.replicas")}},
		{"ready above replicas", appsv1.StatefulSetStatus{Replicas: 1, ReadyReplicas: 2}, []wantErr{invalid("status.readyReplicas")}},
		{"available above ready", appsv1.StatefulSetStatus{Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 2}, []wantErr{invalid("status.availableReplicas")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := old.DeepCopy()
			s.Status = tt.status
			checkErrs(t, StatefulSets().ValidateStatus(s, old), tt.want...)
		})
	}
}

func TestStatefulSetRow(t *testing.T) {
	s := newStatefulSet()
	s.Spec.Replicas = ptrTo(int32(3))
	s.Status.ReadyReplicas = 2
	s.CreationTimestamp = metav1.NewTime(time.Now().Add(-10 * time.Minute))
	r := StatefulSets()
	got := r.Row(s)
	want := []any{"web", "2/3", "10m", "nginx", "nginx:1.27"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	var names []string
	for _, c := range r.Columns {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"Name", "Ready", "Age", "Containers", "Images"}, names); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}

const seedStatefulSet = `{"metadata":{"name":"web","namespace":"default"},"spec":{"replicas":3,"serviceName":"web",` +
	`"selector":{"matchLabels":{"app":"web"}},"podManagementPolicy":"Parallel","ordinals":{"start":2},` +
	`"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1,"maxUnavailable":"50%"}},` +
	`"persistentVolumeClaimRetentionPolicy":{"whenDeleted":"Delete","whenScaled":"Retain"},` +
	`"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}}}}],` +
	`"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx",` +
	`"volumeMounts":[{"name":"data","mountPath":"/data"}]}]}}}}`

func FuzzStatefulSet(f *testing.F) {
	f.Add([]byte(seedStatefulSet))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzResource(t, StatefulSets(), data) })
}
