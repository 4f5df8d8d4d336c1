# distchat: `make` lists the targets. Everything builds static binaries
# (CGO_ENABLED=0) so the images can be FROM scratch.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin
GOFLAGS  := -trimpath
export CGO_ENABLED := 0

.PHONY: help build test test-mqtt test-hostile test-browser fuzz fuzz-short lint images all demo demo-down demo-ha demo-ha-down eval bench bench-analysis bench-compare clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build static binaries into bin/ (broker, chatnode, analysis)
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./broker/cmd/broker ./chatnode/cmd/chatnode ./analysis/cmd/analysis

test: ## go vet, every test with the race detector (test-mqtt among them; needs mosquitto), the socket paths without it, fuzz-short, and test-browser where chromium is installed
	$(GO) vet ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./... # test-mqtt's conformance tests (broker/conformance) among them
	$(GO) test -count=1 ./broker/rawio/ ./broker/roomlog/ ./broker/ ./chatnode/mqttconn/ ./chatnode/ # race builds leave rawio's raw calls out: these run them
	@$(MAKE) --no-print-directory fuzz-short
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory test-browser; \
	else echo "test: no chromium: the browser tests (make test-browser) are skipped; apt-get install chromium"; fi

test-mqtt: ## MQTT 3.1.1 and 5 conformance: raw packets against our broker and Mosquitto (docs/broker.md's table); ~20 s
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 5m -v ./broker/conformance/ | grep -E '^(=== RUN|---|\s+--- |ok|FAIL|PASS)|known difference|not installed' ; exit $${PIPESTATUS[0]}

# The hostile-client tests (docs/SECURITY.md lists them by class).
HOSTILE := TestPublishAsAnotherUserRefused|TestClientIDBelongsToItsUser|TestSessionTakeoverRefused|TestAuthRefused|TestWill.*|TestSubscribeACL|TestAnonymousReadOnly|TestSyncIsOnlyForThoseWhoMayRead|TestListAnswersDMsAndGrantedRooms|TestMalformedChatTopicRefused|TestValidateName.*|TestParseTopicRejects|TestConnectTimeoutClosesSilentConnections|TestConnectionLimits|TestRefusedConnectionsLogIsRateLimited|TestGuardedAccept.*|TestHealthzFollowsAcceptLoop|TestDMsToUnknownUsersStartNoConversation|TestConversationCapsHold|TestSyncFloodFromClientThatDoesNotRead|TestInflightBytes.*|TestNeverAckingSubscriberDropsCountedAndLogged|TestStuckSubscriberDoesNotBlockPublishers|TestStalledReaderQueueFullDropsCounted|TestStampedRecordWithinPacketSize|TestMessageOverSubscribersMaximumPacketSizeIsCounted|TestLongClientStringsClippedInLogs|TestSlogBridgeRedactsAndCountsQuotaDrops|TestConnack.*
test-hostile: ## the hostile-client tests alone (each attack class, its refusal and its bound; also in make test)
	CGO_ENABLED=1 $(GO) test -race -count=1 -run '^($(HOSTILE))$$' ./broker/... ./broker/wire/

test-browser: ## the web page in a real headless Chromium (needs: apt-get install chromium); screenshot in results/web.png
	DISTCHAT_BROWSER=1 CGO_ENABLED=1 $(GO) test -race -count=1 -tags browser -run Browser -timeout 5m ./chatnode/web/

# The fuzz targets, as package:target. Plain go test runs their seeds
# (f.Add and testdata/fuzz/); these runs search for new failing inputs,
# which go test writes into the package's testdata/fuzz/<target>/.
FUZZ_TARGETS := \
	./broker/wire:FuzzEnvelopeRoundTrip ./broker/wire:FuzzParseTopic ./broker/wire:FuzzDMConversation \
	./broker/wire:FuzzValidateName ./broker/wire:FuzzSyncRequest ./broker/wire:FuzzSyncReply \
	./broker/roomlog:FuzzRecovery ./broker/roomlog:FuzzRestamp ./broker/cluster:FuzzConvOf ./broker/cluster:FuzzForwardBody ./analysis:FuzzParseRec ./analysis:FuzzParseRecRoundTrip \
	./chatnode/session/statedir:FuzzReadJournal ./broker/wire:FuzzEncodeEnvelope ./broker/wire:FuzzUnmarshalEnvelope \
	./chatnode/jsonlog:FuzzFixedEqualsLogrus ./broker/internal/rawmqtt:FuzzDecode ./broker/internal/mqttscan:FuzzScan \
	./broker:FuzzDecodeMarks
FUZZTIME  ?= 60s
FUZZSHORT ?= 4s

# run-fuzz fuzzes every target for $(1), one go test per target. Go 1.26's
# fuzzing coordinator can fail a run that found nothing with a bare "context
# deadline exceeded" at the end of -fuzztime on a loaded machine
# (go.dev/issue/75804); such a run, with no failing input written, is run
# again, up to three times.
define run-fuzz
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  for try in 1 2 3; do \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(1) $$pkg 2>&1) && { echo "fuzz $$fn ($$pkg, $(1)): nothing found in $$(grep -o 'execs: [0-9]*' <<<"$$out" | tail -1 | cut -c8-) runs"; break; }; \
	    if [ $$try -lt 3 ] && grep -q 'context deadline exceeded' <<<"$$out" && ! grep -q 'Failing input written' <<<"$$out"; then \
	      echo "fuzz $$fn: the coordinator's deadline race (go.dev/issue/75804), running it again"; continue; fi; \
	    echo "$$out"; echo "fuzz $$fn ($$pkg): FAILED"; exit 1; \
	  done; \
	done
endef

fuzz: ## run every fuzz target for FUZZTIME (60s) each, one after the other
	$(call run-fuzz,$(FUZZTIME))

fuzz-short: ## every fuzz target for FUZZSHORT (4s) each: a quick search, part of make test
	$(call run-fuzz,$(FUZZSHORT))

lint: ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$$($(GO) env GOPATH)/bin/staticcheck ./...

images: build ## build the FROM scratch Docker images distchat/broker:dev and distchat/chatnode:dev
	docker build -q -f compose/Dockerfile --build-arg BIN=broker -t distchat/broker:dev $(BIN)
	docker build -q -f compose/Dockerfile --build-arg BIN=chatnode -t distchat/chatnode:dev $(BIN)

all: eval demo ## the main job: run the evaluation into results/, then start the demo chat

demo: images ## start the demo deployment (broker + alice, bob, carol + web chat); open the printed URL
	docker-compose -p distchat -f compose/docker-compose.yml up -d
	@echo "demo: running. Web chat: open http://localhost:$${DISTCHAT_WEB_PORT:-8081} and sign in as alice (password alice-pw; bob-pw, carol-pw, dave-pw too)."
	@echo "demo: terminal chat: docker attach distchat_alice_1 (detach: Ctrl-P Ctrl-Q)."
	@echo "demo: watch: mosquitto_sub -h 127.0.0.1 -p 1883 -t 'chat/#' -v    stop: make demo-down"

demo-down: ## stop the demo deployment and delete its volumes
	docker-compose -p distchat -f compose/docker-compose.yml down -v

demo-ha: images ## start the HA demo: three brokers in cluster mode, alice, bob, carol each listing all three (docs/ha-deployment.md)
	docker-compose -p distchat-ha -f compose/docker-compose-ha.yml up -d
	@echo "demo-ha: running. Chat: docker attach distchat-ha_alice_1 (or _bob_1, _carol_1; detach: Ctrl-P Ctrl-Q)."
	@echo "demo-ha: kill a broker: docker kill -s KILL distchat-ha_broker2_1   stop: make demo-ha-down"

demo-ha-down: ## stop the HA demo and delete its volumes
	docker-compose -p distchat-ha -f compose/docker-compose-ha.yml down -v

SCENARIOS ?= $(wildcard compose/scenarios/*.yaml)
eval: images ## run the evaluation scenarios and fault drills (compose/scenarios), then the analysis into results/
	$(GO) run ./compose/cmd/eval -results results $(SCENARIOS)
	rm -f results/compare_*.png results/latency_*.png results/loss_*.png results/throughput_*.png # plots of scenarios no longer run
	$(BIN)/analysis -out results results/*/logs

bench: ## Go benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-nodes drill-many
drill-many: ## 500 MQTT clients in 50 rooms at 1 msg/s each for 30 s on the broker binary: no drops, broker CPU, RSS, p99 (also in results/bench/drill-many.txt)
	@mkdir -p results/bench
	set -o pipefail; DISTCHAT_DRILL_MANY=1 $(GO) test -count=1 -run TestManyClientsDrill -v ./broker/ | grep -E "clients,|^(---|ok|FAIL)" | tee results/bench/drill-many.txt

bench-nodes: build ## chat nodes' CPU per delivery (10 chatnode bench processes, 100 msg/s each for 10 s), then bare paho's on the same load (also in results/bench/nodes.txt)
	@mkdir -p results/bench
	set -o pipefail; $(GO) run ./chatnode/cmd/benchnodes -bin $(BIN) $(BENCH_NODES_FLAGS) | tee results/bench/nodes.txt
	set -o pipefail; $(GO) run ./chatnode/cmd/benchnodes -bin $(BIN) -client paho $(BENCH_NODES_FLAGS) | tee -a results/bench/nodes.txt

bench-analysis: build ## the analysis on 10 million synthetic log lines (3 GB in a temp dir): wall time and peak memory (also in results/bench/analysis.txt)
	@[ -x /usr/bin/time ] || { echo "bench-analysis: needs /usr/bin/time (apt-get install time)"; exit 1; }
	@mkdir -p results/bench && d=$$(mktemp -d) && trap 'rm -rf "$$d"' EXIT && \
	$(BIN)/analysis gen -lines 10000000 -out "$$d/logs" && \
	/usr/bin/time -o results/bench/analysis.txt -f "analysis of 10M lines: %e s wall, %M KB peak RSS" $(BIN)/analysis -q -no-plots -out "$$d/out" "$$d/logs" && \
	cat results/bench/analysis.txt

bench-compare: build ## Mosquitto, bare Mochi and our broker under the same loads (≤ 10 min): results/bench/compare.*, a summary in README
	$(GO) run ./compose/cmd/benchcompare -bin $(BIN) -out results/bench -readme README.md -command "make bench-compare"

clean: ## remove built binaries
	rm -rf $(BIN)
