package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"
)

// healthCommand is `catdog health`: a container health check for images without a shell or
// curl (deploy/compose.yaml's healthcheck runs it inside the image).
func healthCommand() *cli.Command {
	return &cli.Command{
		Name:  "health",
		Usage: "exit 0 when URL answers 200 within the timeout (a container health check)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:8080/health"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second},
		},
		Action: func(c *cli.Context) error {
			client := &http.Client{Timeout: c.Duration("timeout")}
			req, err := http.NewRequestWithContext(c.Context, http.MethodGet, c.String("url"), nil)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			resp, err := client.Do(req)
			if err != nil {
				if cerr := c.Context.Err(); cerr != nil {
					return fmt.Errorf("catdog health: %w", cerr) // interrupted: exit 130, not "unhealthy"
				}
				return cli.Exit(fmt.Sprintf("unhealthy: %v", err), 1)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return cli.Exit(fmt.Sprintf("unhealthy: %s answered %s", c.String("url"), resp.Status), 1)
			}
			return nil
		},
	}
}
