package eval

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const (
	// brokerHTTPPort is a broker's /healthz port inside its container; the
	// compose files publish it on an ephemeral loopback port of the host.
	brokerHTTPPort = "8080"
	// healthTimeout bounds the wait for a restarted broker's /healthz: a
	// cluster member rejoins and catches its streams up before it listens.
	healthTimeout = 2 * time.Minute
	// healthPoll is how often the runner asks a restarting broker's /healthz.
	healthPoll = 100 * time.Millisecond
	// stopGrace is how many seconds docker stop gives a broker between its
	// SIGTERM and a SIGKILL: the compose files' stop_grace_period.
	stopGrace = "20"
)

// HTTPHealthz asks http://addr/healthz once and returns nil on 200 OK: the
// broker takes clients (a cluster member once it has rejoined).
func HTTPHealthz(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthz request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET /healthz: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// restartBroker stops broker gracefully (start) or starts it again and
// waits for its /healthz (end). It calls docker, not docker-compose, whose
// seconds per call would blur the fault's edges.
func (r *Runner) restartBroker(ctx context.Context, broker string, start bool) error {
	id, err := r.container(ctx, broker)
	if err != nil {
		return err
	}
	began := time.Now()
	if start {
		if _, err := r.Cmd.Run(ctx, nil, "docker", "stop", "-t", stopGrace, id); err != nil {
			return err
		}
		r.say("%s stopped %s after its SIGTERM", broker, time.Since(began).Round(time.Millisecond))
		return nil
	}
	if _, err := r.Cmd.Run(ctx, nil, "docker", "start", id); err != nil {
		return err
	}
	if err := r.waitHealthy(ctx, id, broker); err != nil {
		return err
	}
	r.say("%s healthy %s after its start", broker, time.Since(began).Round(time.Millisecond))
	return nil
}

// container is the id of service's container, found once per run by its
// compose labels (docker ps answers at once; compose ps takes seconds).
func (r *Runner) container(ctx context.Context, service string) (string, error) {
	if id, ok := r.containers[service]; ok {
		return id, nil
	}
	out, err := r.Cmd.Run(ctx, nil, "docker", "ps", "-a", "-q", "--filter", "label=com.docker.compose.project="+r.Project,
		"--filter", "label=com.docker.compose.service="+service)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.Contains(id, "\n") {
		return "", fmt.Errorf("%s of project %s has no single container (%q)", service, r.Project, id)
	}
	r.containers[service] = id
	return id, nil
}

// waitHealthy waits, at most healthTimeout, until broker's /healthz
// answers OK, so a rolling restart never has two brokers down. The
// published port is asked anew: docker may pick another at every start.
func (r *Runner) waitHealthy(ctx context.Context, id, broker string) error {
	wctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	var addr string
	var last error
	for {
		if addr == "" {
			// docker port prints a line per binding (IPv4, IPv6): the first serves.
			out, err := r.Cmd.Run(wctx, nil, "docker", "port", id, brokerHTTPPort)
			line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
			addr, last = strings.TrimSpace(line), err
			if err == nil && addr == "" {
				last = fmt.Errorf("%s publishes no port %s", broker, brokerHTTPPort)
			}
		}
		if addr != "" {
			if last = r.Healthz(wctx, addr); last == nil {
				return nil
			}
		}
		if err := r.Sleep(wctx, healthPoll); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s not healthy within %s: %w", broker, healthTimeout, last)
		}
	}
}
