// Package deploy holds the deployment files that are not Go: deploy/compose.yaml (one host),
// deploy/k8s (rendered Kubernetes objects) and deploy/monitoring. Its test checks compose.yaml.
package deploy
