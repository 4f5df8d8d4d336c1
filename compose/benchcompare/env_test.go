package benchcompare

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMosquittoChild starts a benchmark Mosquitto as a child process, runs
// a short pair load through it and checks the accounting of the child.
func TestMosquittoChild(t *testing.T) {
	bin, err := lookMosquitto()
	if err != nil {
		t.Skip("mosquitto is not installed (apt-get install mosquitto)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	env := &Env{MosquittoBin: bin, Tmp: t.TempDir(), Progress: t.Logf}
	dir := filepath.Join(env.Tmp, "mosquitto")
	fig, err := env.withBroker(ctx, Mosquitto, dir, func(url string) (measured, error) {
		return runPairsMeasured(ctx, PairsConfig{Pairs: 2, Size: 256, Duration: 200 * time.Millisecond, Timeout: 5 * time.Second}, url)
	})
	if err != nil {
		t.Fatalf("pair load against mosquitto: %v", err)
	}
	if fig.Deliveries == 0 || fig.Loss != 0 || fig.P50MS <= 0 || fig.P99MS < fig.P50MS || fig.MaxMS < fig.P99MS {
		t.Errorf("figures %+v: want deliveries, no loss, 0 < p50 ≤ p99 ≤ max", fig)
	}
	if fig.BrokerRSSMB <= 0 || fig.LoadCPUS <= 0 || fig.BrokerSwitchesPerDelivery <= 0 {
		t.Errorf("broker RSS %v MB, load CPU %v s, broker switches %v per delivery: want all measured", fig.BrokerRSSMB, fig.LoadCPUS, fig.BrokerSwitchesPerDelivery)
	}
	b, err := os.ReadFile(filepath.Join(dir, "mosquitto.conf"))
	if err != nil || len(b) == 0 {
		t.Errorf("mosquitto.conf: %v", err)
	}
}
