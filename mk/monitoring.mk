# monitoring area (deploy/monitoring, catdog alert-relay): the real Alertmanager for the
# end-to-end drift -> alert -> retraining-dispatch test (Prometheus comes from APT_PKGS already).
APT_PKGS += prometheus-alertmanager

.PHONY: bench-drift
bench-drift: venv ## drift comparison: catdog drift.Compare vs Evidently DataDriftPreset on the same feature table -> bench/drift/RESULTS.md
	$(GO) run ./bench/drift -data $(SHARED)/petimages-dev -python $(VENV)/bin/python -rounds 5 > bench/drift/RESULTS.new.md
	mv bench/drift/RESULTS.new.md bench/drift/RESULTS.md
