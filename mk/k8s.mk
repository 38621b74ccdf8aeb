# k8s area (package k8s, catdog deploy): the real control plane the k8s tests start on 127.0.0.1 —
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl of one Kubernetes
# release, and kwok as the nodes — built once from the Go module proxy by scripts/setup-k8s.sh
# into the cache (never committed). internal/testenv finds them through CATDOG_K8S_BIN.
K8S_VERSION  ?= v1.37.2
K8S_DIR      := $(CACHE)/k8s-$(K8S_VERSION)
DEPS_EXTRA   += $(K8S_DIR)/.complete
export CATDOG_K8S_BIN := $(K8S_DIR)/bin

$(K8S_DIR)/.complete: scripts/setup-k8s.sh
	K8S_VERSION=$(K8S_VERSION) nice -n 10 ./scripts/setup-k8s.sh
	touch $@

.PHONY: k8s-tools
k8s-tools: $(K8S_DIR)/.complete ## build the test control plane (etcd, kube-*, kubectl, kwok) into the cache

.PHONY: k8s-manifests
k8s-manifests: ## rewrite deploy/k8s/ from `catdog k8s render`
	CATDOG_UPDATE_MANIFESTS=1 $(GO) test -count=1 -tags catdog_light -run TestRenderedManifestsAreCurrent ./cmd/catdog

.PHONY: bench-deploy
bench-deploy: go.work $(K8S_DIR)/.complete ## catdog deploy vs kubectl apply + rollout status (+ rollout undo) on the local control plane (write-up: bench/deploy/RESULTS.md)
	mkdir -p $(CACHE)/bench-deploy
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/deploy | tee $(CACHE)/bench-deploy/results.txt
