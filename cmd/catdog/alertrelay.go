package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/catdog-mlops/catdog/alertrelay"
	"github.com/catdog-mlops/catdog/ci/gha"
)

// alertRelayCommand is `catdog alert-relay`: Alertmanager webhook -> GitHub repository_dispatch.
func alertRelayCommand() *cli.Command {
	return &cli.Command{
		Name:  "alert-relay",
		Usage: "receive Alertmanager webhooks; a firing CatdogInputDrift group sends GitHub a repository_dispatch (retrain)",
		Description: "Listens for Alertmanager webhook notifications (webhook_configs url: http://HOST:PORT/alertmanager).\n" +
			"For a firing group of --alertname it POSTs /repos/OWNER/NAME/dispatches with event_type --event-type and\n" +
			"the alert's labels and drifted features as client_payload, at most once per group and --repeat-interval.\n" +
			"The token is read from $CATDOG_GITHUB_TOKEN or $GITHUB_TOKEN and never logged.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: ":9095", Usage: "listen address", EnvVars: []string{"CATDOG_RELAY_ADDR"}},
			&cli.StringFlag{Name: "repo", Required: true, Usage: "GitHub repository owner/name", EnvVars: []string{"GITHUB_REPOSITORY"}},
			&cli.StringFlag{Name: "github-api", Value: gha.DefaultAPIURL, Usage: "GitHub REST API root (GitHub Enterprise: https://HOST/api/v3)", EnvVars: []string{"GITHUB_API_URL"}},
			&cli.StringFlag{Name: "alertname", Value: "CatdogInputDrift", Usage: "alert that starts retraining"},
			&cli.StringFlag{Name: "event-type", Value: "retrain", Usage: "repository_dispatch event type"},
			&cli.DurationFlag{Name: "repeat-interval", Value: 12 * time.Hour, Usage: "least time between two dispatches for one alert group"},
			&cli.IntFlag{Name: "attempts", Value: 5, Usage: "tries per dispatch (5xx, 429 and network errors are retried with backoff, honouring Retry-After)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error (JSON logs on stderr)"},
		},
		Action: runAlertRelay,
	}
}

func runAlertRelay(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cli.Exit(fmt.Sprintf("catdog alert-relay: --log-level: %v", err), 2)
	}
	log := slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	token := os.Getenv("CATDOG_GITHUB_TOKEN")
	if token == "" {
		token = os.Getenv("GITHUB_TOKEN")
	}
	if token == "" {
		return cli.Exit("catdog alert-relay: set CATDOG_GITHUB_TOKEN or GITHUB_TOKEN (a token allowed to create repository_dispatch events)", 2)
	}
	d := &gha.Dispatcher{APIURL: c.String("github-api"), Repo: c.String("repo"), Token: token, Attempts: c.Int("attempts")}
	relay := alertrelay.New(d, alertrelay.Options{
		AlertName: c.String("alertname"), EventType: c.String("event-type"),
		RepeatInterval: c.Duration("repeat-interval"), Log: log,
	})
	l, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return fmt.Errorf("catdog alert-relay: %w", err)
	}
	srv := &http.Server{Handler: relay, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute}
	log.Info("listening", "addr", l.Addr().String(), "repo", d.Repo, "api", d.APIURL, "alertname", c.String("alertname"),
		"event_type", c.String("event-type"), "repeat_interval", c.Duration("repeat-interval").String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("catdog alert-relay: %w", err)
	case <-c.Context.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("catdog alert-relay: shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("catdog alert-relay: %w", err)
	}
	log.Info("stopped")
	return nil
}
