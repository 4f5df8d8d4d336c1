package benchcompare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// MosquittoConfig is a benchmark Mosquitto's configuration: anonymous, in
// memory, a queue deep enough that a slow subscriber causes no loss, and
// Nagle off as Go has it for the other brokers.
func MosquittoConfig(port int) string {
	return fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
max_queued_messages 100000
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
`, port)
}

// findMosquitto returns the mosquitto binary and its version. When it is
// missing and this process runs as root it installs the Debian package.
func findMosquitto(ctx context.Context, progress func(string, ...any)) (string, string, error) {
	path, err := lookMosquitto()
	if err != nil && os.Geteuid() == 0 {
		progress("mosquitto not found: apt-get install -y mosquitto")
		for _, argv := range [][]string{{"apt-get", "update"}, {"apt-get", "install", "-y", "mosquitto"}} {
			out, aerr := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
			if aerr != nil {
				return "", "", fmt.Errorf("%s: %w (%s)", strings.Join(argv, " "), aerr, lastOf(string(out)))
			}
		}
		path, err = lookMosquitto()
	}
	if err != nil {
		return "", "", errors.New("mosquitto not found on PATH: install it (apt-get install mosquitto) or leave it out with -brokers")
	}
	// mosquitto -h prints "mosquitto version X.Y.Z" first and exits 3.
	out, herr := exec.CommandContext(ctx, path, "-h").CombinedOutput()
	version := MosquittoVersion(string(out))
	if version == "" {
		return "", "", fmt.Errorf("%s -h: no version in its output (%v)", path, herr)
	}
	return path, version, nil
}

// lookMosquitto finds mosquitto on PATH or in Debian's /usr/sbin.
func lookMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/mosquitto")
}

// MosquittoVersion extracts the version from mosquitto -h output.
func MosquittoVersion(help string) string {
	for _, line := range strings.Split(help, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "mosquitto version "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
