package resources

import (
	"fmt"
	"math"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Jobs is batch/v1 jobs, after Kubernetes' pkg/apis/batch: defaults,
// validation and the generated selector. Jobs run no pods yet; the
// controller comes later.
func Jobs() *Resource {
	return &Resource{
		GVR:              batchv1.SchemeGroupVersion.WithResource("jobs"),
		Kind:             "Job",
		SingularName:     "job",
		Namespaced:       true,
		Categories:       []string{"all"},
		New:              func() runtime.Object { return &batchv1.Job{} },
		NewList:          func() runtime.Object { return &batchv1.JobList{} },
		HasStatus:        true,
		Default:          typed(defaultJob),
		PrepareForCreate: typed(generateJobSelector),
		Validate:         typedValidate(validateJob),
		ValidateUpdate:   typedValidateUpdate(validateJobUpdate),
		ValidateStatus:   typedValidateUpdate(validateJobStatusUpdate),
		Columns: []metav1.TableColumnDefinition{
			nameColumn,
			{Name: "Status", Type: "string", Description: "Status of the job."},
			{Name: "Completions", Type: "string", Description: batchv1.JobStatus{}.SwaggerDoc()["succeeded"]},
			{Name: "Duration", Type: "string", Description: "Time required to complete the job."},
			ageColumn,
			{Name: "Containers", Type: "string", Priority: 1, Description: "Names of each container in the template."},
			{Name: "Images", Type: "string", Priority: 1, Description: "Images referenced by each container in the template."},
			{Name: "Selector", Type: "string", Priority: 1, Description: batchv1.JobSpec{}.SwaggerDoc()["selector"]},
		},
		Row: typedRowNow(jobRow),
		Fields: typedFields(func(j *batchv1.Job) fields.Set {
			return fields.Set{"status.successful": strconv.Itoa(int(j.Status.Succeeded))}
		}),
	}
}

// The pre-1.27 labels a generated selector also puts on the template.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

// Limits of indexed jobs and pod failure policies (pkg/apis/batch/validation).
const (
	maxParallelismForIndexedJob = 100000
	maxFailedIndexesForIndexed  = 100000
	completionsSoftLimit        = 100000
	maxPodFailurePolicyRules    = 20
	maxManagedByLength          = 63
)

func defaultJob(j *batchv1.Job) {
	defaultJobSpec(&j.Spec)
	// A job without labels takes its template's, as Kubernetes does.
	if j.Spec.Template.Labels != nil && len(j.Labels) == 0 {
		j.Labels = j.Spec.Template.Labels
	}
	if j.Spec.ManualSelector == nil {
		j.Spec.ManualSelector = ptrTo(false)
	}
}

// defaultJobSpec is SetDefaults_Job without what belongs to the Job object.
func defaultJobSpec(s *batchv1.JobSpec) {
	if s.Completions == nil && s.Parallelism == nil {
		s.Completions = ptrTo(int32(1))
	}
	if s.Parallelism == nil {
		s.Parallelism = ptrTo(int32(1))
	}
	if s.BackoffLimit == nil {
		if s.BackoffLimitPerIndex != nil {
			s.BackoffLimit = ptrTo(int32(math.MaxInt32))
		} else {
			s.BackoffLimit = ptrTo(int32(6))
		}
	}
	if s.CompletionMode == nil {
		s.CompletionMode = ptrTo(batchv1.NonIndexedCompletion)
	}
	if s.Suspend == nil {
		s.Suspend = ptrTo(false)
	}
	if pfp := s.PodFailurePolicy; pfp != nil {
		for _, r := range pfp.Rules {
			for i := range r.OnPodConditions {
				if r.OnPodConditions[i].Status == "" {
					r.OnPodConditions[i].Status = corev1.ConditionTrue
				}
			}
		}
	}
	if s.PodReplacementPolicy == nil {
		if s.PodFailurePolicy != nil {
			s.PodReplacementPolicy = ptrTo(batchv1.Failed)
		} else {
			s.PodReplacementPolicy = ptrTo(batchv1.TerminatingOrFailed)
		}
	}
	defaultPodTemplate(&s.Template)
}

// generateJobSelector gives a job without a manual selector the labels and
// selector that tie its pods to its uid (the uid is set before this runs).
// Labels the user set are kept; validation then refuses a conflict.
func generateJobSelector(j *batchv1.Job) {
	if j.Spec.ManualSelector != nil && *j.Spec.ManualSelector {
		return
	}
	if j.Spec.Template.Labels == nil {
		j.Spec.Template.Labels = map[string]string{}
	}
	for k, v := range map[string]string{
		legacyJobNameLabel: j.Name, batchv1.JobNameLabel: j.Name,
		legacyControllerUIDLabel: string(j.UID), batchv1.ControllerUidLabel: string(j.UID),
	} {
		if _, ok := j.Spec.Template.Labels[k]; !ok {
			j.Spec.Template.Labels[k] = v
		}
	}
	if j.Spec.Selector == nil {
		j.Spec.Selector = &metav1.LabelSelector{}
	}
	if j.Spec.Selector.MatchLabels == nil {
		j.Spec.Selector.MatchLabels = map[string]string{}
	}
	if _, ok := j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel]; !ok {
		j.Spec.Selector.MatchLabels[batchv1.ControllerUidLabel] = string(j.UID)
	}
}

func validateJob(j *batchv1.Job) field.ErrorList {
	errs := validateMeta(&j.ObjectMeta, true, nameIsDNSSubdomain)
	errs = append(errs, validateGeneratedJobSelector(j)...)
	errs = append(errs, validateJobSpec(&j.Spec, field.NewPath("spec"))...)
	// An indexed job's pods are named <job>-<index>, which must stay a DNS label.
	if m := j.Spec.CompletionMode; m != nil && *m == batchv1.IndexedCompletion && j.Spec.Completions != nil && *j.Spec.Completions > 0 {
		host := fmt.Sprintf("%s-%d", j.Name, *j.Spec.Completions-1)
		if len(validation.IsDNS1123Label(host)) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), j.Name, "will not able to create pod with invalid DNS label: "+host))
		}
	}
	return errs
}

// validateGeneratedJobSelector checks that the generated labels are still
// there and the selector is the generated one.
func validateGeneratedJobSelector(j *batchv1.Job) field.ErrorList {
	if (j.Spec.ManualSelector != nil && *j.Spec.ManualSelector) || j.Spec.Template.Labels == nil || j.UID == "" {
		return nil
	}
	mp := field.NewPath("spec", "template", "metadata")
	var errs field.ErrorList
	for _, l := range []struct{ key, want string }{
		{legacyControllerUIDLabel, string(j.UID)}, {legacyJobNameLabel, j.Name},
		{batchv1.ControllerUidLabel, string(j.UID)}, {batchv1.JobNameLabel, j.Name},
	} {
		errs = append(errs, validateHasLabel(j.Spec.Template.Labels, l.key, l.want, mp)...)
	}
	if j.Spec.Selector == nil {
		return errs
	}
	if sel, err := metav1.LabelSelectorAsSelector(j.Spec.Selector); err == nil && !sel.Matches(labels.Set{batchv1.ControllerUidLabel: string(j.UID)}) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "selector"), j.Spec.Selector, "`selector` not auto-generated"))
	}
	return errs
}

func validateHasLabel(ls map[string]string, key, want string, p *field.Path) field.ErrorList {
	got, ok := ls[key]
	switch {
	case !ok:
		return field.ErrorList{field.Required(p.Child("labels").Key(key), fmt.Sprintf("must be '%s'", want))}
	case got != want:
		return field.ErrorList{field.Invalid(p.Child("labels").Key(key), got, fmt.Sprintf("must be '%s'", want))}
	}
	return nil
}

// validateJobSpec checks a job's spec including its selector.
func validateJobSpec(s *batchv1.JobSpec, p *field.Path) field.ErrorList {
	errs := validateJobTemplateSpecFields(s, p)
	sp := p.Child("selector")
	if s.Selector == nil {
		errs = append(errs, field.Required(sp, ""))
	} else {
		errs = append(errs, validateLabelSelector(s.Selector, sp)...)
	}
	if sel, err := metav1.LabelSelectorAsSelector(s.Selector); err == nil && !sel.Matches(labels.Set(s.Template.Labels)) {
		errs = append(errs, field.Invalid(p.Child("template", "metadata", "labels"), s.Template.Labels, "`selector` does not match template `labels`"))
	}
	return errs
}

var (
	completionModes          = []batchv1.CompletionMode{batchv1.NonIndexedCompletion, batchv1.IndexedCompletion}
	podReplacementPolicies   = []batchv1.PodReplacementPolicy{batchv1.Failed, batchv1.TerminatingOrFailed}
	podFailurePolicyActions  = []batchv1.PodFailurePolicyAction{batchv1.PodFailurePolicyActionCount, batchv1.PodFailurePolicyActionFailIndex, batchv1.PodFailurePolicyActionFailJob, batchv1.PodFailurePolicyActionIgnore}
	podFailurePolicyOps      = []batchv1.PodFailurePolicyOnExitCodesOperator{batchv1.PodFailurePolicyOnExitCodesOpIn, batchv1.PodFailurePolicyOnExitCodesOpNotIn}
	conditionStatuses        = []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}
	jobTemplateRestartPolicy = []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
)

// validateJobTemplateSpecFields checks what a Job and a CronJob's job
// template share: everything but the selector (validateJobSpec in Kubernetes).
func validateJobTemplateSpecFields(s *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, f := range []struct {
		name string
		v    *int32
	}{
		{"parallelism", s.Parallelism}, {"completions", s.Completions}, {"backoffLimit", s.BackoffLimit},
		{"ttlSecondsAfterFinished", s.TTLSecondsAfterFinished}, {"backoffLimitPerIndex", s.BackoffLimitPerIndex},
		{"maxFailedIndexes", s.MaxFailedIndexes},
	} {
		if f.v != nil {
			errs = append(errs, validateNonnegative(int64(*f.v), p.Child(f.name))...)
		}
	}
	if s.ActiveDeadlineSeconds != nil {
		errs = append(errs, validateNonnegative(*s.ActiveDeadlineSeconds, p.Child("activeDeadlineSeconds"))...)
	}
	if s.MaxFailedIndexes != nil && s.BackoffLimitPerIndex == nil {
		errs = append(errs, field.Required(p.Child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
	}
	if m := s.ManagedBy; m != nil {
		errs = append(errs, validation.IsDomainPrefixedPath(p.Child("managedBy"), *m)...)
		if len(*m) > maxManagedByLength {
			errs = append(errs, field.TooLong(p.Child("managedBy"), "", maxManagedByLength))
		}
	}
	indexed := s.CompletionMode != nil && *s.CompletionMode == batchv1.IndexedCompletion
	if m := s.CompletionMode; m != nil && !oneOf(*m, completionModes...) {
		errs = append(errs, field.NotSupported(p.Child("completionMode"), *m, completionModes))
	}
	if indexed {
		errs = append(errs, validateIndexedJob(s, p)...)
	} else {
		if s.BackoffLimitPerIndex != nil {
			errs = append(errs, field.Invalid(p.Child("backoffLimitPerIndex"), *s.BackoffLimitPerIndex, "requires indexed completion mode"))
		}
		if s.MaxFailedIndexes != nil {
			errs = append(errs, field.Invalid(p.Child("maxFailedIndexes"), *s.MaxFailedIndexes, "requires indexed completion mode"))
		}
	}
	if s.PodFailurePolicy != nil {
		errs = append(errs, validatePodFailurePolicy(s, p.Child("podFailurePolicy"))...)
	}
	if rp := s.PodReplacementPolicy; rp != nil {
		switch {
		case s.PodFailurePolicy != nil && *rp != batchv1.Failed:
			errs = append(errs, field.NotSupported(p.Child("podReplacementPolicy"), *rp, []batchv1.PodReplacementPolicy{batchv1.Failed}))
		case !oneOf(*rp, podReplacementPolicies...):
			errs = append(errs, field.NotSupported(p.Child("podReplacementPolicy"), *rp, podReplacementPolicies))
		}
	}
	tp := p.Child("template")
	errs = append(errs, validatePodTemplate(&s.Template, tp)...)
	// An unset restartPolicy was defaulted to Always: both mean the author forgot it.
	rpp := tp.Child("spec", "restartPolicy")
	switch rp := s.Template.Spec.RestartPolicy; {
	case rp == corev1.RestartPolicyAlways || rp == "":
		errs = append(errs, field.Required(rpp, fmt.Sprintf("valid values: %q, %q", corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)))
	case !oneOf(rp, jobTemplateRestartPolicy...):
		errs = append(errs, field.NotSupported(rpp, rp, jobTemplateRestartPolicy))
	case s.PodFailurePolicy != nil && rp != corev1.RestartPolicyNever:
		errs = append(errs, field.Invalid(rpp, rp, fmt.Sprintf("only %q is supported when podFailurePolicy is specified", corev1.RestartPolicyNever)))
	}
	return errs
}

func validateIndexedJob(s *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Completions == nil {
		errs = append(errs, field.Required(p.Child("completions"), fmt.Sprintf("when completion mode is %s", batchv1.IndexedCompletion)))
	}
	if s.Parallelism != nil && *s.Parallelism > maxParallelismForIndexedJob {
		errs = append(errs, field.Invalid(p.Child("parallelism"), *s.Parallelism,
			fmt.Sprintf("must be less than or equal to %d when completion mode is %s", maxParallelismForIndexedJob, batchv1.IndexedCompletion)))
	}
	if mfi := s.MaxFailedIndexes; mfi != nil {
		if s.Completions != nil && *mfi > *s.Completions {
			errs = append(errs, field.Invalid(p.Child("maxFailedIndexes"), *mfi, "must be less than or equal to completions"))
		}
		if *mfi > maxFailedIndexesForIndexed {
			errs = append(errs, field.Invalid(p.Child("maxFailedIndexes"), *mfi, fmt.Sprintf("must be less than or equal to %d", maxFailedIndexesForIndexed)))
		}
	}
	if s.Completions != nil && *s.Completions > completionsSoftLimit && s.BackoffLimitPerIndex != nil && s.MaxFailedIndexes == nil {
		errs = append(errs, field.Required(p.Child("maxFailedIndexes"), fmt.Sprintf("must be specified when completions is above %d", completionsSoftLimit)))
	}
	return errs
}

func validatePodFailurePolicy(s *batchv1.JobSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	rp := p.Child("rules")
	rules := s.PodFailurePolicy.Rules
	if len(rules) > maxPodFailurePolicyRules {
		errs = append(errs, field.TooMany(rp, len(rules), maxPodFailurePolicyRules))
	}
	for i, r := range rules {
		p := rp.Index(i)
		ap := p.Child("action")
		switch {
		case r.Action == "":
			errs = append(errs, field.Required(ap, fmt.Sprintf("valid values: %q", podFailurePolicyActions)))
		case r.Action == batchv1.PodFailurePolicyActionFailIndex && s.BackoffLimitPerIndex == nil:
			errs = append(errs, field.Invalid(ap, r.Action, "requires the backoffLimitPerIndex to be set"))
		case !oneOf(r.Action, podFailurePolicyActions...):
			errs = append(errs, field.NotSupported(ap, r.Action, podFailurePolicyActions))
		}
		if ec := r.OnExitCodes; ec != nil {
			ep := p.Child("onExitCodes")
			if ec.ContainerName != nil && !containsContainer(s.Template.Spec.Containers, *ec.ContainerName) && !containsContainer(s.Template.Spec.InitContainers, *ec.ContainerName) {
				errs = append(errs, field.Invalid(ep.Child("containerName"), *ec.ContainerName, "must be one of the container or initContainer names in the pod template"))
			}
			if !oneOf(ec.Operator, podFailurePolicyOps...) {
				errs = append(errs, field.NotSupported(ep.Child("operator"), ec.Operator, podFailurePolicyOps))
			}
			if len(ec.Values) == 0 {
				errs = append(errs, field.Invalid(ep.Child("values"), ec.Values, "at least one value is required"))
			}
			for j, v := range ec.Values {
				if ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && v == 0 {
					errs = append(errs, field.Invalid(ep.Child("values").Index(j), v, "must not be 0 for the In operator"))
				}
				if j > 0 && ec.Values[j-1] >= v {
					errs = append(errs, field.Invalid(ep.Child("values").Index(j), v, "must be ordered"))
				}
			}
		}
		for j, c := range r.OnPodConditions {
			cp := p.Child("onPodConditions").Index(j)
			if !oneOf(c.Status, conditionStatuses...) {
				errs = append(errs, field.NotSupported(cp.Child("status"), c.Status, conditionStatuses))
			}
			errs = append(errs, validateQualifiedName(string(c.Type), cp.Child("type"))...)
		}
		switch {
		case r.OnExitCodes != nil && len(r.OnPodConditions) > 0:
			errs = append(errs, field.Invalid(p, field.OmitValueType{}, "specifying both OnExitCodes and OnPodConditions is not supported"))
		case r.OnExitCodes == nil && len(r.OnPodConditions) == 0:
			errs = append(errs, field.Invalid(p, field.OmitValueType{}, "specifying one of OnExitCodes and OnPodConditions is required"))
		}
	}
	return errs
}

// validateJobUpdate: the template may change only in its scheduling
// directives and only while the job is suspended and never started;
// completions only with parallelism in an indexed job.
func validateJobUpdate(j, old *batchv1.Job) field.ErrorList {
	p := field.NewPath("spec")
	s, os := &j.Spec, &old.Spec
	var errs field.ErrorList
	indexed := s.CompletionMode != nil && *s.CompletionMode == batchv1.IndexedCompletion
	switch {
	case !indexed:
		errs = append(errs, apivalidation.ValidateImmutableField(s.Completions, os.Completions, p.Child("completions"))...)
	case s.Completions != nil && !apiequality.Semantic.DeepEqual(s.Completions, os.Completions) && (s.Parallelism == nil || *s.Completions != *s.Parallelism):
		errs = append(errs, field.Invalid(p.Child("completions"), s.Completions, "can only be modified in tandem with spec.parallelism"))
	}
	errs = append(errs, apivalidation.ValidateImmutableField(s.Selector, os.Selector, p.Child("selector"))...)
	oldTemplate := &os.Template
	if os.Suspend != nil && *os.Suspend && old.Status.StartTime == nil {
		oldTemplate = os.Template.DeepCopy()
		nt, ot := &s.Template, oldTemplate
		switch {
		case nt.Spec.Affinity == nil && ot.Spec.Affinity != nil:
			ot.Spec.Affinity.NodeAffinity = nil
			if apiequality.Semantic.DeepEqual(*ot.Spec.Affinity, corev1.Affinity{}) {
				ot.Spec.Affinity = nil
			}
		case nt.Spec.Affinity != nil && ot.Spec.Affinity == nil:
			ot.Spec.Affinity = &corev1.Affinity{NodeAffinity: nt.Spec.Affinity.NodeAffinity}
		case nt.Spec.Affinity != nil && ot.Spec.Affinity != nil:
			ot.Spec.Affinity.NodeAffinity = nt.Spec.Affinity.NodeAffinity
		}
		ot.Spec.NodeSelector, ot.Spec.Tolerations, ot.Spec.SchedulingGates = nt.Spec.NodeSelector, nt.Spec.Tolerations, nt.Spec.SchedulingGates
		ot.Annotations, ot.Labels = nt.Annotations, nt.Labels
	}
	errs = append(errs, apivalidation.ValidateImmutableField(s.Template, *oldTemplate, p.Child("template"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(s.CompletionMode, os.CompletionMode, p.Child("completionMode"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(s.PodFailurePolicy, os.PodFailurePolicy, p.Child("podFailurePolicy"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(s.BackoffLimitPerIndex, os.BackoffLimitPerIndex, p.Child("backoffLimitPerIndex"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(s.ManagedBy, os.ManagedBy, p.Child("managedBy"))...)
	errs = append(errs, apivalidation.ValidateImmutableField(s.SuccessPolicy, os.SuccessPolicy, p.Child("successPolicy"))...)
	return append(errs, apivalidation.ValidateImmutableField(s.PodReplacementPolicy, os.PodReplacementPolicy, p.Child("podReplacementPolicy"))...)
}

func validateJobStatusUpdate(j, _ *batchv1.Job) field.ErrorList {
	p := field.NewPath("status")
	var errs field.ErrorList
	for _, c := range []struct {
		name string
		v    int32
	}{{"active", j.Status.Active}, {"succeeded", j.Status.Succeeded}, {"failed", j.Status.Failed}} {
		errs = append(errs, validateNonnegative(int64(c.v), p.Child(c.name))...)
	}
	if j.Status.Ready != nil {
		errs = append(errs, validateNonnegative(int64(*j.Status.Ready), p.Child("ready"))...)
	}
	if j.Status.Terminating != nil {
		errs = append(errs, validateNonnegative(int64(*j.Status.Terminating), p.Child("terminating"))...)
	}
	return errs
}

func jobRow(j *batchv1.Job, now time.Time) []any {
	var completions string
	switch par := deref(j.Spec.Parallelism, 0); {
	case j.Spec.Completions != nil:
		completions = fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case par > 1:
		completions = fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, par)
	default:
		completions = fmt.Sprintf("%d/1", j.Status.Succeeded)
	}
	var took string
	switch st := j.Status; {
	case st.StartTime == nil:
	case st.CompletionTime == nil:
		took = duration.HumanDuration(now.Sub(st.StartTime.Time))
	default:
		took = duration.HumanDuration(st.CompletionTime.Sub(st.StartTime.Time))
	}
	names, images := containerCells(j.Spec.Template.Spec.Containers)
	return []any{j.Name, jobStatus(j), completions, took, age(j.CreationTimestamp, now), names, images, metav1.FormatLabelSelector(j.Spec.Selector)}
}

// jobStatus is kubectl's STATUS cell: the first that holds, in this order.
func jobStatus(j *batchv1.Job) string {
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}
	switch {
	case has(batchv1.JobComplete):
		return "Complete"
	case has(batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case has(batchv1.JobSuspended):
		return "Suspended"
	case has(batchv1.JobFailureTarget):
		return "FailureTarget"
	case has(batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}
