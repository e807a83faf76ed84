// Package kubernetes holds no code: it is the Kubernetes example
// (Deployment, Service, ConfigMap, Secret, PodDisruptionBudget) for
// running sekisho as several replicas on PostgreSQL, and the test that
// reads these manifests and ../compose with yaml.v3 and checks what a
// cluster needs (at least two replicas, probes on the metrics listener,
// a disruption budget, a non-root read-only container, a configuration
// and policy that sekisho loads). See docs/scale-out.md.
package kubernetes
