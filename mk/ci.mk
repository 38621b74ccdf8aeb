# ci area (OCI image + GitHub Actions): actionlint and shellcheck for the workflow tests,
# and the image benchmark.
ACTIONLINT_VERSION := v1.7.12
APT_PKGS   += shellcheck
DEPS_EXTRA += $(GOBIN_DIR)/.actionlint-$(ACTIONLINT_VERSION)

$(GOBIN_DIR)/.actionlint-$(ACTIONLINT_VERSION):
	GOBIN=$(GOBIN_DIR) GOWORK=off $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	touch $@

.PHONY: actionlint
actionlint: $(GOBIN_DIR)/.actionlint-$(ACTIONLINT_VERSION) ## lint .github/workflows with actionlint (+ shellcheck)
	actionlint -pyflakes=

.PHONY: bench-ci
bench-ci: build ## image build + push to a local registry vs the gzip floor -> bench/ci/RESULTS.md
	$(GO) run ./bench/ci -catdog $(CATDOG_TORCH) -results bench/ci/RESULTS.md
