// Package podautoscaler is the HorizontalPodAutoscaler controller, after
// kube-controller-manager's podautoscaler: every sync period it reads each
// HPA's target through the scale subresource, its pods' CPU and memory
// from metrics.k8s.io (Resource metrics: Utilization of requests or
// AverageValue targets), computes the replica count that brings usage to
// the target within a 10% tolerance (pods starting, unready or without
// metrics handled as upstream does), stabilizes it (scale-down window,
// 300 s by default, or spec.behavior's windows and rate policies), bounds
// it by min and max replicas, and writes the scale. Status carries
// currentMetrics, current and desired replicas, lastScaleTime and the
// AbleToScale, ScalingActive and ScalingLimited conditions with upstream's
// reasons and messages; rescales are SuccessfulRescale events.
package podautoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	autoscalinglisters "k8s.io/client-go/listers/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"wharf.dev/wharf/internal/controllers/controllerutil"
)

// Defaults, kube-controller-manager's flags.
const (
	// DefaultSyncPeriod is --horizontal-pod-autoscaler-sync-period.
	DefaultSyncPeriod = 15 * time.Second
	// DefaultDownscaleStabilization is
	// --horizontal-pod-autoscaler-downscale-stabilization.
	DefaultDownscaleStabilization = 5 * time.Minute
	// DefaultTolerance is --horizontal-pod-autoscaler-tolerance.
	DefaultTolerance = 0.1
	// DefaultCPUInitializationPeriod and DefaultInitialReadinessDelay are
	// --horizontal-pod-autoscaler-cpu-initialization-period and
	// -initial-readiness-delay.
	DefaultCPUInitializationPeriod = 5 * time.Minute
	DefaultInitialReadinessDelay   = 30 * time.Second
)

// Controller scales HPAs' targets.
type Controller struct {
	logger   *slog.Logger
	client   kubernetes.Interface
	metrics  MetricsSource
	scaler   Scaler
	recorder record.EventRecorder
	clock    clock.Clock

	syncPeriod, downscaleWindow time.Duration
	tolerance                   float64
	calc                        *calculator

	hpaLister autoscalinglisters.HorizontalPodAutoscalerLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]
	history   *history
}

// Option configures a Controller.
type Option func(*Controller)

// WithSyncPeriod sets how often each HPA is evaluated (default 15 s).
func WithSyncPeriod(d time.Duration) Option { return func(c *Controller) { c.syncPeriod = d } }

// WithDownscaleStabilization sets the scale-down window of HPAs without
// one in their behavior (default 5 min).
func WithDownscaleStabilization(d time.Duration) Option {
	return func(c *Controller) { c.downscaleWindow = d }
}

// WithCPUInitializationPeriod sets how long after a pod starts its CPU
// samples are checked against its readiness (default 5 min).
func WithCPUInitializationPeriod(d time.Duration) Option {
	return func(c *Controller) { c.calc.cpuInitializationPeriod = d }
}

// WithClock injects a clock (tests).
func WithClock(clk clock.Clock) Option { return func(c *Controller) { c.clock = clk } }

// New returns the controller on factory's HPA and pod informers. The
// caller starts factory after New and before Run.
func New(logger *slog.Logger, client kubernetes.Interface, factory informers.SharedInformerFactory, recorder record.EventRecorder,
	metrics MetricsSource, scaler Scaler, opts ...Option) *Controller {
	hpas := factory.Autoscaling().V2().HorizontalPodAutoscalers()
	c := &Controller{
		logger: logger.With("controller", "horizontal-pod-autoscaler"), client: client,
		metrics: metrics, scaler: scaler, recorder: recorder, clock: clock.RealClock{},
		syncPeriod: DefaultSyncPeriod, downscaleWindow: DefaultDownscaleStabilization, tolerance: DefaultTolerance,
		calc:      &calculator{cpuInitializationPeriod: DefaultCPUInitializationPeriod, delayOfInitialReadiness: DefaultInitialReadinessDelay},
		hpaLister: hpas.Lister(), podLister: factory.Core().V1().Pods().Lister(),
		history: newHistory(),
	}
	for _, o := range opts {
		o(c)
	}
	c.calc.now = c.clock.Now
	// Every evaluation, failed or not, is followed by the next one a sync
	// period later, as upstream's fixed-interval rate limiter does.
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig[string](fixedInterval(c.syncPeriod),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "horizontalpodautoscaler"})
	key := func(obj any) (string, bool) {
		k, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		return k, err == nil
	}
	c.synced = controllerutil.AddEventHandlers(c.logger, controllerutil.EventHandler{
		Informer: hpas.Informer(),
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				if k, ok := key(obj); ok {
					c.queue.Add(k)
				}
			},
			UpdateFunc: func(old, cur any) {
				// Our own status writes come back as updates: only a spec
				// change is evaluated at once.
				o, n := old.(*autoscalingv2.HorizontalPodAutoscaler), cur.(*autoscalingv2.HorizontalPodAutoscaler)
				if k, ok := key(cur); ok && !equality.Semantic.DeepEqual(o.Spec, n.Spec) {
					c.queue.Add(k)
				}
			},
			DeleteFunc: func(obj any) {
				if k, ok := key(obj); ok {
					c.queue.Forget(k)
					c.history.forget(k)
				}
			},
		},
	}, controllerutil.EventHandler{Informer: factory.Core().V1().Pods().Informer(), Handler: cache.ResourceEventHandlerFuncs{}})
	return c
}

// fixedInterval delays every retry by one sync period.
type fixedInterval time.Duration

func (f fixedInterval) When(string) time.Duration { return time.Duration(f) }
func (fixedInterval) Forget(string)               {}
func (fixedInterval) NumRequeues(string) int      { return 0 }

// Run evaluates HPAs with workers goroutines until ctx is done.
func (c *Controller) Run(ctx context.Context, workers int) {
	controllerutil.Run(ctx, c.logger, c.queue, c.synced, workers, c.sync, controllerutil.KeyAttr("hpa"))
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("hpa key %q: %w", key, err)
	}
	hpa, err := c.hpaLister.HorizontalPodAutoscalers(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		c.history.forget(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get hpa %s: %w", key, err)
	}
	// The next evaluation, whatever this one's outcome.
	c.queue.AddAfter(key, c.syncPeriod)
	return c.reconcile(ctx, key, hpa)
}

func (c *Controller) reconcile(ctx context.Context, key string, shared *autoscalingv2.HorizontalPodAutoscaler) error {
	hpa := shared.DeepCopy()
	original := hpa.Status.DeepCopy()
	now := c.clock.Now()
	ref := hpa.Spec.ScaleTargetRef
	reference := fmt.Sprintf("%s/%s/%s", ref.Kind, hpa.Namespace, ref.Name)

	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", "the HPA controller was unable to get the target's current scale: %v", now, err)
		c.updateStatusIfNeeded(ctx, original, hpa)
		return fmt.Errorf("invalid API version in scale target reference: %w", err)
	}
	scale, gr, err := c.scaler.GetScale(ctx, hpa.Namespace, schema.GroupKind{Group: gv.Group, Kind: ref.Kind}, ref.Name)
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedGetScale", err.Error())
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedGetScale", "the HPA controller was unable to get the target's current scale: %v", now, err)
		c.updateStatusIfNeeded(ctx, original, hpa)
		return fmt.Errorf("failed to query scale subresource for %s: %w", reference, err)
	}
	setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededGetScale", "the HPA controller was able to get the target's current scale", now)
	current := scale.Spec.Replicas
	c.history.recordInitial(key, current, now)

	minReplicas := int32(1)
	if hpa.Spec.MinReplicas != nil {
		minReplicas = *hpa.Spec.MinReplicas
	}
	var (
		statuses []autoscalingv2.MetricStatus
		desired  int32
		reason   string
		retErr   error
		rescale  = true
	)
	switch {
	case current == 0 && minReplicas != 0:
		desired, rescale = 0, false
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero", now)
	case current > hpa.Spec.MaxReplicas:
		reason, desired = "Current number of replicas above Spec.MaxReplicas", hpa.Spec.MaxReplicas
	case current < minReplicas:
		reason, desired = "Current number of replicas below Spec.MinReplicas", minReplicas
	default:
		proposal, metric, sts, err := c.replicasForMetrics(ctx, hpa, scale.Status.Selector, current, scale.Status.Replicas, now)
		statuses = sts
		if err != nil && proposal == -1 {
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			c.updateStatusIfNeeded(ctx, original, hpa)
			c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedComputeMetricsReplicas", err.Error())
			return fmt.Errorf("failed to compute desired number of replicas based on listed metrics for %s: %w", reference, err)
		}
		retErr = err
		desired = proposal
		switch {
		case desired > current:
			reason = metric + " above target"
		case desired < current:
			reason = "All metrics below target"
		}
		if hpa.Spec.Behavior == nil {
			desired = c.history.normalize(hpa, key, current, desired, minReplicas, c.downscaleWindow, now)
		} else {
			b := hpa.DeepCopy()
			b.Spec.Behavior = withBehaviorDefaults(hpa.Spec.Behavior, c.downscaleWindow)
			desired = c.history.normalizeWithBehavior(b, key, current, desired, minReplicas, now)
			hpa.Status.Conditions = b.Status.Conditions
		}
		rescale = desired != current
	}

	if rescale {
		scale.Spec.Replicas = desired
		if _, err := c.scaler.UpdateScale(ctx, hpa.Namespace, gr, scale); err != nil {
			c.recorder.Eventf(hpa, corev1.EventTypeWarning, "FailedRescale", "New size: %d; reason: %s; error: %v", desired, reason, err)
			setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionFalse, "FailedUpdateScale", "the HPA controller was unable to update the target scale: %v", now, err)
			c.setStatus(hpa, current, hpa.Status.DesiredReplicas, statuses, false, now)
			c.updateStatusIfNeeded(ctx, original, hpa)
			return fmt.Errorf("failed to rescale %s: %w", reference, err)
		}
		setCondition(hpa, autoscalingv2.AbleToScale, corev1.ConditionTrue, "SucceededRescale", "the HPA controller was able to update the target scale to %d", now, desired)
		c.recorder.Eventf(hpa, corev1.EventTypeNormal, "SuccessfulRescale", "New size: %d; reason: %s", desired, reason)
		c.history.recordScale(withBehaviorDefaults(hpa.Spec.Behavior, c.downscaleWindow), key, current, desired, now)
		c.logger.Info("rescaled", "hpa", key, "target", reference, "from", current, "to", desired, "reason", reason)
	} else {
		desired = current
	}
	c.setStatus(hpa, current, desired, statuses, rescale, now)
	if err := c.updateStatusIfNeeded(ctx, original, hpa); err != nil {
		return err
	}
	return retErr
}

// replicasForMetrics is computeReplicasForMetrics: the largest proposal of
// the HPA's metrics. -1 with an error: no proposal can be trusted (every
// metric failed, or some did and the rest would scale down).
func (c *Controller) replicasForMetrics(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, rawSelector string, specReplicas, statusReplicas int32, now time.Time) (int32, string, []autoscalingv2.MetricStatus, error) {
	if rawSelector == "" {
		msg := "selector is required"
		c.recorder.Event(hpa, corev1.EventTypeWarning, "SelectorRequired", msg)
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale is missing a selector", now)
		return -1, "", nil, errors.New(msg)
	}
	selector, err := labels.Parse(rawSelector)
	if err != nil {
		msg := fmt.Sprintf("couldn't convert selector into a corresponding internal selector object: %v", err)
		c.recorder.Event(hpa, corev1.EventTypeWarning, "InvalidSelector", msg)
		setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionFalse, "InvalidSelector", "the HPA target's scale has an invalid selector: %s", now, err.Error())
		return -1, "", nil, errors.New(msg)
	}
	specs := hpa.Spec.Metrics
	statuses := make([]autoscalingv2.MetricStatus, len(specs))
	var (
		replicas     int32
		metric       string
		invalid      int
		firstErr     error
		firstInvalid autoscalingv2.HorizontalPodAutoscalerCondition
	)
	for i, spec := range specs {
		proposal, name, cond, err := c.replicasForMetric(ctx, hpa, spec, specReplicas, selector, &statuses[i], now)
		if err != nil {
			if invalid == 0 {
				firstInvalid, firstErr = cond, err
			}
			invalid++
			continue
		}
		if replicas == 0 || proposal > replicas {
			replicas, metric = proposal, name
		}
	}
	if firstErr != nil {
		firstErr = fmt.Errorf("invalid metrics (%v invalid out of %v), first error is: %w", invalid, len(specs), firstErr)
	}
	if invalid >= len(specs) || (invalid > 0 && replicas < specReplicas) {
		setCondition(hpa, firstInvalid.Type, firstInvalid.Status, firstInvalid.Reason, firstInvalid.Message, now)
		return -1, "", statuses, firstErr
	}
	setCondition(hpa, autoscalingv2.ScalingActive, corev1.ConditionTrue, "ValidMetricFound", "the HPA was able to successfully calculate a replica count from %s", now, metric)
	return replicas, metric, statuses, firstErr
}

// replicasForMetric proposes a count for one metric and fills its status.
func (c *Controller) replicasForMetric(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, spec autoscalingv2.MetricSpec, current int32, selector labels.Selector, status *autoscalingv2.MetricStatus, now time.Time) (int32, string, autoscalingv2.HorizontalPodAutoscalerCondition, error) {
	var (
		resName   corev1.ResourceName
		target    autoscalingv2.MetricTarget
		container string
	)
	switch {
	case spec.Type == autoscalingv2.ResourceMetricSourceType && spec.Resource != nil:
		resName, target = spec.Resource.Name, spec.Resource.Target
	case spec.Type == autoscalingv2.ContainerResourceMetricSourceType && spec.ContainerResource != nil:
		resName, target, container = spec.ContainerResource.Name, spec.ContainerResource.Target, spec.ContainerResource.Container
	default:
		// Pods, Object and External metrics need a custom or external
		// metrics API, which this cluster does not serve.
		err := fmt.Errorf("unsupported metric source type %q: only Resource and ContainerResource metrics are served", spec.Type)
		return 0, "", c.unableToCompute(hpa, "InvalidMetricSourceType", err), err
	}
	proposal, value, name, err := c.resourceProposal(ctx, hpa, current, target, resName, container, selector)
	if err != nil {
		err = fmt.Errorf("failed to get %s resource metric value: %w", resName, err)
		reason := "FailedGetResourceMetric"
		if container != "" {
			reason = "FailedGetContainerResourceMetric"
		}
		return 0, "", c.unableToCompute(hpa, reason, err), err
	}
	if container != "" {
		*status = autoscalingv2.MetricStatus{Type: autoscalingv2.ContainerResourceMetricSourceType,
			ContainerResource: &autoscalingv2.ContainerResourceMetricStatus{Name: resName, Container: container, Current: value}}
	} else {
		*status = autoscalingv2.MetricStatus{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: resName, Current: value}}
	}
	return proposal, name, autoscalingv2.HorizontalPodAutoscalerCondition{}, nil
}

func (c *Controller) resourceProposal(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, current int32, target autoscalingv2.MetricTarget, resName corev1.ResourceName, container string, selector labels.Selector) (int32, autoscalingv2.MetricValueStatus, string, error) {
	tol := c.tolerances(hpa)
	if target.AverageValue == nil && target.AverageUtilization == nil {
		return 0, autoscalingv2.MetricValueStatus{}, "", errors.New("invalid resource metric source: neither an average utilization target nor an average value (usage) target was set")
	}
	metrics, _, err := getResourceMetric(ctx, c.metrics, resName, hpa.Namespace, selector, container)
	if err != nil {
		return 0, autoscalingv2.MetricValueStatus{}, "", fmt.Errorf("failed to get %s utilization: unable to get metrics for resource %s: %w", resName, resName, err)
	}
	pods, err := c.podLister.Pods(hpa.Namespace).List(selector)
	if err != nil {
		return 0, autoscalingv2.MetricValueStatus{}, "", fmt.Errorf("unable to get pods while calculating replica count: %w", err)
	}
	if target.AverageValue != nil {
		replicas, average, err := c.calc.averageValueReplicas(current, target.AverageValue.MilliValue(), tol, resName, pods, metrics)
		if err != nil {
			return 0, autoscalingv2.MetricValueStatus{}, "", fmt.Errorf("failed to get %s usage: %w", resName, err)
		}
		return replicas, autoscalingv2.MetricValueStatus{AverageValue: resource.NewMilliQuantity(average, resource.DecimalSI)}, fmt.Sprintf("%s resource", resName), nil
	}
	replicas, utilization, raw, err := c.calc.utilizationReplicas(current, *target.AverageUtilization, tol, resName, container, pods, metrics)
	if err != nil {
		return 0, autoscalingv2.MetricValueStatus{}, "", fmt.Errorf("failed to get %s utilization: %w", resName, err)
	}
	name := fmt.Sprintf("%s resource utilization (percentage of request)", resName)
	if container != "" {
		name = fmt.Sprintf("%s container resource utilization (percentage of request)", resName)
	}
	return replicas, autoscalingv2.MetricValueStatus{AverageUtilization: &utilization, AverageValue: resource.NewMilliQuantity(raw, resource.DecimalSI)}, name, nil
}

// tolerances are the controller's, or behavior's where it sets them.
func (c *Controller) tolerances(hpa *autoscalingv2.HorizontalPodAutoscaler) tolerances {
	t := tolerances{down: c.tolerance, up: c.tolerance}
	if b := hpa.Spec.Behavior; b != nil {
		if b.ScaleDown != nil && b.ScaleDown.Tolerance != nil {
			t.down = b.ScaleDown.Tolerance.AsApproximateFloat64()
		}
		if b.ScaleUp != nil && b.ScaleUp.Tolerance != nil {
			t.up = b.ScaleUp.Tolerance.AsApproximateFloat64()
		}
	}
	return t
}

func (c *Controller) unableToCompute(hpa *autoscalingv2.HorizontalPodAutoscaler, reason string, err error) autoscalingv2.HorizontalPodAutoscalerCondition {
	c.recorder.Event(hpa, corev1.EventTypeWarning, reason, err.Error())
	return autoscalingv2.HorizontalPodAutoscalerCondition{
		Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse, Reason: reason,
		Message: fmt.Sprintf("the HPA was unable to compute the replica count: %v", err),
	}
}

func (c *Controller) setStatus(hpa *autoscalingv2.HorizontalPodAutoscaler, current, desired int32, metrics []autoscalingv2.MetricStatus, rescale bool, now time.Time) {
	hpa.Status = autoscalingv2.HorizontalPodAutoscalerStatus{
		CurrentReplicas: current, DesiredReplicas: desired,
		LastScaleTime: hpa.Status.LastScaleTime, CurrentMetrics: metrics, Conditions: hpa.Status.Conditions,
		ObservedGeneration: &hpa.Generation,
	}
	if rescale {
		t := metav1.NewTime(now)
		hpa.Status.LastScaleTime = &t
	}
}

func (c *Controller) updateStatusIfNeeded(ctx context.Context, old *autoscalingv2.HorizontalPodAutoscalerStatus, hpa *autoscalingv2.HorizontalPodAutoscaler) error {
	if equality.Semantic.DeepEqual(old, &hpa.Status) {
		return nil
	}
	_, err := c.client.AutoscalingV2().HorizontalPodAutoscalers(hpa.Namespace).UpdateStatus(ctx, hpa, metav1.UpdateOptions{})
	if err != nil {
		c.recorder.Event(hpa, corev1.EventTypeWarning, "FailedUpdateStatus", err.Error())
		return fmt.Errorf("failed to update status for %s: %w", hpa.Name, err)
	}
	return nil
}
