package k8s

import (
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
)

// PortName is the name of serve's container port and of the Service port.
const PortName = "http"

// Objects are the application's objects, in the order they are applied.
type Objects struct {
	ServiceAccount *corev1ac.ServiceAccountApplyConfiguration
	Service        *corev1ac.ServiceApplyConfiguration
	// Deployment has no spec.replicas: the HorizontalPodAutoscaler owns it (the deployer sets
	// it only when it creates the Deployment, then hands it over).
	Deployment *appsv1ac.DeploymentApplyConfiguration
	HPA        *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration
	PDB        *policyv1ac.PodDisruptionBudgetApplyConfiguration
}

// List returns the objects in apply order.
func (o Objects) List() []any {
	return []any{o.ServiceAccount, o.Service, o.Deployment, o.HPA, o.PDB}
}

// DeployerRBAC is the least-privilege identity `catdog deploy` runs as: a ServiceAccount, a
// namespaced Role with exactly the verbs a deploy, rollout wait, smoke test and rollback use,
// and the RoleBinding between them. A cluster administrator applies it once.
type DeployerRBAC struct {
	ServiceAccount *corev1ac.ServiceAccountApplyConfiguration
	Role           *rbacv1ac.RoleApplyConfiguration
	RoleBinding    *rbacv1ac.RoleBindingApplyConfiguration
}

// List returns the objects in apply order.
func (r DeployerRBAC) List() []any { return []any{r.ServiceAccount, r.Role, r.RoleBinding} }

// selectorLabels select the pods of a spec (stable across versions).
func (s Spec) selectorLabels() map[string]string {
	return map[string]string{LabelName: "catdog", LabelInstance: s.Name}
}

func (s Spec) labels() map[string]string {
	l := s.selectorLabels()
	l[LabelComponent] = "inference"
	l[LabelPartOf] = "catdog"
	l[LabelManagedBy] = "catdog"
	return l
}

func (s Spec) podLabels() map[string]string {
	l := s.labels()
	if s.Model.Version != "" {
		l[LabelVersion] = s.Model.Version
	}
	return l
}

// modelAnnotations describe what a revision serves; they are on the Deployment and on its pod
// template (so every ReplicaSet records them, and a rollback restores them).
func (s Spec) modelAnnotations() map[string]string {
	a := map[string]string{AnnotationImageDigest: Digest(s.Image)}
	if a[AnnotationImageDigest] == "" {
		a[AnnotationImageDigest] = "unpinned:" + s.Image
	}
	for k, v := range map[string]string{AnnotationModelName: s.Model.Name, AnnotationModelVersion: s.Model.Version, AnnotationRunID: s.Model.RunID} {
		if v != "" {
			a[k] = v
		}
	}
	return a
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

// Build defaults and validates s and builds the application's objects.
func Build(s Spec) (Objects, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return Objects{}, err
	}
	return Objects{
		ServiceAccount: corev1ac.ServiceAccount(s.Name, s.Namespace).WithLabels(s.labels()).
			WithAutomountServiceAccountToken(false),
		Service:    s.service(),
		Deployment: s.deployment(),
		HPA:        s.hpa(),
		PDB:        s.pdb(),
	}, nil
}

func (s Spec) service() *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(s.Name, s.Namespace).WithLabels(s.labels()).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(s.selectorLabels()).
			WithPorts(corev1ac.ServicePort().WithName(PortName).WithProtocol(corev1.ProtocolTCP).
				WithPort(80).WithTargetPort(intstr.FromString(PortName))))
}

func (s Spec) args() []string {
	a := []string{"--model", s.ModelPath, "--addr", ":" + strconv.Itoa(int(s.Port)),
		"--drain-delay", s.DrainDelay.String(), "--shutdown-timeout", s.ShutdownTimeout.String()}
	if s.Model.Version != "" {
		a = append(a, "--model-version", s.Model.Version)
	}
	return a
}

func (s Spec) deployment() *appsv1ac.DeploymentApplyConfiguration {
	httpGet := func(path string) *corev1ac.HTTPGetActionApplyConfiguration {
		return corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString(PortName))
	}
	threads := resource.MustParse(s.Resources.CPULimit)
	nthreads := max(1, threads.Value())
	podAnnotations := s.modelAnnotations()
	podAnnotations["prometheus.io/scrape"] = "true"
	podAnnotations["prometheus.io/port"] = strconv.Itoa(int(s.Port))
	podAnnotations["prometheus.io/path"] = "/metrics"
	depAnnotations := s.modelAnnotations()
	depAnnotations[AnnotationChangeCause] = s.ChangeCause()

	container := corev1ac.Container().
		WithName("serve").
		WithImage(s.Image).
		WithImagePullPolicy(corev1.PullIfNotPresent).
		WithArgs(s.args()...).
		WithEnv(corev1ac.EnvVar().WithName("CATDOG_THREADS").WithValue(strconv.FormatInt(nthreads, 10))).
		WithPorts(corev1ac.ContainerPort().WithName(PortName).WithContainerPort(s.Port).WithProtocol(corev1.ProtocolTCP)).
		WithResources(corev1ac.ResourceRequirements().
			WithRequests(corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(s.Resources.CPURequest),
				corev1.ResourceMemory: resource.MustParse(s.Resources.MemoryRequest),
			}).
			WithLimits(corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(s.Resources.CPULimit),
				corev1.ResourceMemory: resource.MustParse(s.Resources.MemoryLimit),
			})).
		// serve answers /health at once and /ready once the model is loaded and warm; the
		// startup probe allows 2 minutes of loading before liveness takes over.
		WithStartupProbe(corev1ac.Probe().WithHTTPGet(httpGet("/ready")).
			WithPeriodSeconds(2).WithFailureThreshold(60).WithTimeoutSeconds(2)).
		WithReadinessProbe(corev1ac.Probe().WithHTTPGet(httpGet("/ready")).
			WithPeriodSeconds(5).WithFailureThreshold(2).WithTimeoutSeconds(2)).
		WithLivenessProbe(corev1ac.Probe().WithHTTPGet(httpGet("/health")).
			WithPeriodSeconds(10).WithFailureThreshold(3).WithTimeoutSeconds(2)).
		// the endpoints controller withdraws a terminating pod while it sleeps; SIGTERM then
		// starts serve's drain (/ready 503 for --drain-delay, in-flight requests finish).
		WithLifecycle(corev1ac.Lifecycle().WithPreStop(corev1ac.LifecycleHandler().
			WithSleep(corev1ac.SleepAction().WithSeconds(seconds(s.PreStopSleep))))).
		WithSecurityContext(corev1ac.SecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(s.UID).
			WithRunAsGroup(s.UID).
			WithReadOnlyRootFilesystem(true).
			WithAllowPrivilegeEscalation(false).
			WithPrivileged(false).
			WithCapabilities(corev1ac.Capabilities().WithDrop(corev1.Capability("ALL"))).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp"))

	pod := corev1ac.PodSpec().
		WithServiceAccountName(s.Name).
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(seconds(s.gracePeriod())).
		WithSecurityContext(corev1ac.PodSecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(s.UID).
			WithRunAsGroup(s.UID).
			WithFSGroup(s.UID).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		WithTopologySpreadConstraints(corev1ac.TopologySpreadConstraint().
			WithMaxSkew(1).
			WithTopologyKey(corev1.LabelHostname).
			WithWhenUnsatisfiable(corev1.ScheduleAnyway).
			WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(s.selectorLabels())).
			WithMatchLabelKeys(appsv1.DefaultDeploymentUniqueLabelKey)).
		WithVolumes(corev1ac.Volume().WithName("tmp").
			WithEmptyDir(corev1ac.EmptyDirVolumeSource().WithSizeLimit(resource.MustParse("256Mi")))).
		WithContainers(container)

	return appsv1ac.Deployment(s.Name, s.Namespace).
		WithLabels(s.labels()).
		WithAnnotations(depAnnotations).
		WithSpec(appsv1ac.DeploymentSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(s.selectorLabels())).
			WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsv1ac.RollingUpdateDeployment().
					WithMaxUnavailable(intstr.FromInt32(0)).
					WithMaxSurge(intstr.FromInt32(1)))).
			WithProgressDeadlineSeconds(int32(seconds(s.ProgressDeadline))).
			WithRevisionHistoryLimit(10).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(s.podLabels()).
				WithAnnotations(podAnnotations).
				WithSpec(pod)))
}

func (s Spec) hpa() *autoscalingv2ac.HorizontalPodAutoscalerApplyConfiguration {
	return autoscalingv2ac.HorizontalPodAutoscaler(s.Name, s.Namespace).WithLabels(s.labels()).
		WithSpec(autoscalingv2ac.HorizontalPodAutoscalerSpec().
			WithScaleTargetRef(autoscalingv2ac.CrossVersionObjectReference().
				WithAPIVersion("apps/v1").WithKind("Deployment").WithName(s.Name)).
			WithMinReplicas(s.Replicas).
			WithMaxReplicas(s.MaxReplicas).
			WithMetrics(autoscalingv2ac.MetricSpec().
				WithType(autoscalingv2.ResourceMetricSourceType).
				WithResource(autoscalingv2ac.ResourceMetricSource().
					WithName(corev1.ResourceCPU).
					WithTarget(autoscalingv2ac.MetricTarget().
						WithType(autoscalingv2.UtilizationMetricType).
						WithAverageUtilization(s.TargetCPU)))).
			WithBehavior(autoscalingv2ac.HorizontalPodAutoscalerBehavior().
				WithScaleDown(autoscalingv2ac.HPAScalingRules().
					WithStabilizationWindowSeconds(int32(seconds(s.ScaleDownWindow))).
					WithPolicies(autoscalingv2ac.HPAScalingPolicy().
						WithType(autoscalingv2.PercentScalingPolicy).WithValue(50).WithPeriodSeconds(60)))))
}

func (s Spec) pdb() *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	return policyv1ac.PodDisruptionBudget(s.Name, s.Namespace).WithLabels(s.labels()).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMinAvailable(intstr.FromInt32(1)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(s.selectorLabels())))
}

// BuildRBAC builds the deployer's least-privilege identity for s's namespace and objects.
func BuildRBAC(s Spec) (DeployerRBAC, error) {
	s = s.WithDefaults()
	if s.Image == "" {
		s.Image = "rbac@sha256:" + zeros // the image does not matter to RBAC
	}
	if err := s.Validate(); err != nil {
		return DeployerRBAC{}, err
	}
	labels := map[string]string{LabelName: "catdog", LabelInstance: s.Name, LabelComponent: "deployer",
		LabelPartOf: "catdog", LabelManagedBy: "catdog"}
	rule := func(group string, resources []string, names []string, verbs ...string) *rbacv1ac.PolicyRuleApplyConfiguration {
		r := rbacv1ac.PolicyRule().WithAPIGroups(group).WithResources(resources...).WithVerbs(verbs...)
		if len(names) > 0 {
			r.WithResourceNames(names...)
		}
		return r
	}
	own := []string{s.Name}
	// Exactly the requests catdog deploy, deploy status/history/rollback and the smoke test make,
	// plus the get of each object that kubectl's client-side apply of deploy/k8s/catdog.yaml
	// needs (the deploy benchmark runs kubectl apply, rollout status and undo as this identity);
	// nothing else.
	rules := []*rbacv1ac.PolicyRuleApplyConfiguration{
		// server-side apply (a PATCH; the first one creates the object, so create as well: create
		// cannot be limited to names); list/watch of the Deployment for the rollout wait go
		// through the metadata.name field selector, which RBAC matches against resourceNames
		rule("apps", []string{"deployments"}, nil, "create"),
		rule("apps", []string{"deployments"}, own, "get", "patch", "list", "watch"),
		rule("", []string{"services", "serviceaccounts"}, nil, "create"),
		rule("", []string{"services", "serviceaccounts"}, own, "get", "patch"),
		rule("policy", []string{"poddisruptionbudgets"}, nil, "create"),
		rule("policy", []string{"poddisruptionbudgets"}, own, "get", "patch"),
		rule("autoscaling", []string{"horizontalpodautoscalers"}, nil, "create"),
		// get: also deploy status, which reports the HPA's desired replicas
		rule("autoscaling", []string{"horizontalpodautoscalers"}, own, "get", "patch"),
		// history, rollback and the smoke test list the Deployment's ReplicaSets (by its
		// selector), the smoke test the new revision's pods
		rule("apps", []string{"replicasets"}, nil, "list"),
		rule("", []string{"pods"}, nil, "list"),
		// the smoke test: GET /health, /ready, /version and POST /predict through the pod proxy
		// to each pod of the new revision (pod names are generated, so no resourceNames)
		rule("", []string{"pods/proxy"}, nil, "get", "create"),
	}
	return DeployerRBAC{
		ServiceAccount: corev1ac.ServiceAccount(s.Deployer, s.Namespace).WithLabels(labels),
		Role:           rbacv1ac.Role(s.Deployer, s.Namespace).WithLabels(labels).WithRules(rules...),
		RoleBinding: rbacv1ac.RoleBinding(s.Deployer, s.Namespace).WithLabels(labels).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("Role").WithName(s.Deployer)).
			WithSubjects(rbacv1ac.Subject().WithKind(rbacv1.ServiceAccountKind).WithName(s.Deployer).WithNamespace(s.Namespace)),
	}, nil
}

const zeros = "0000000000000000000000000000000000000000000000000000000000000000"
