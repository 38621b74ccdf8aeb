# monitoring area (deploy/monitoring, catdog alert-relay): the real Alertmanager for the
# end-to-end drift -> alert -> retraining-dispatch test (Prometheus comes from APT_PKGS already).
APT_PKGS += prometheus-alertmanager
