package benchcompare

import (
	"context"
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

// buildBins builds the programs into dir with go build, from the module
// root. Programs found in prebuilt (a directory such as bin/ from make
// build; "" for none) are used as they are; baremochi is always built.
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
			if abs, err := filepath.Abs(filepath.Join(prebuilt, name)); err == nil && isExecutable(abs) {
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

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
