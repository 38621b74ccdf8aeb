// Package monitoring holds no code: it is the home of catdog's Prometheus scrape config,
// alerting and recording rules and Grafana dashboard (the files next to this one), and of the
// tests that check them with promtool and a real Prometheus scraping the inference service.
package monitoring
