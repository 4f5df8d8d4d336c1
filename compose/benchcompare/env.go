package benchcompare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Bins are the programs a run starts.
type Bins struct {
	Broker, Chatnode, Analysis, BareMochi string
}

// Env is what every load needs: the programs, Mosquitto, a scratch
// directory (each broker and load gets a fresh one below it) and where
// progress lines go.
type Env struct {
	Bins                           Bins
	MosquittoBin, MosquittoVersion string
	Tmp                            string
	Progress                       func(format string, args ...any)
}

// buildBins builds the programs into dir, taking those found in prebuilt
// (such as bin/ from make build; "" for none) as they are but baremochi.
func buildBins(ctx context.Context, dir, prebuilt string) (Bins, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return Bins{}, err
	}
	b := Bins{BareMochi: filepath.Join(dir, "baremochi")}
	pkgs := []string{"./compose/cmd/baremochi"}
	for _, p := range []struct {
		dst *string
		pkg string
	}{{&b.Broker, "./broker/cmd/broker"}, {&b.Chatnode, "./chatnode/cmd/chatnode"}, {&b.Analysis, "./analysis/cmd/analysis"}} {
		name := filepath.Base(p.pkg)
		if prebuilt != "" {
			abs, err := filepath.Abs(filepath.Join(prebuilt, name))
			if fi, serr := os.Stat(abs); err == nil && serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				*p.dst = abs
				continue
			}
		}
		*p.dst = filepath.Join(dir, name)
		pkgs = append(pkgs, p.pkg)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Bins{}, fmt.Errorf("go build %s: %w: %s", strings.Join(pkgs, " "), err, strings.TrimSpace(string(out)))
	}
	return b, nil
}

// moduleRoot is the directory of the go.mod that go build uses here.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the distchat module (run from the repository)")
	}
	return filepath.Dir(gomod), nil
}

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
