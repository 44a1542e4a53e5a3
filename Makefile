# The two commands: `make run` starts a node on :7880 in dev mode; `make test` runs every test.
# Each installs what it needs when it is missing (Debian packages need root or sudo).

GO      ?= go
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT     := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
# Fuzz budgets are counts of executions, about 10 s each here: a duration (-fuzztime=10s) races Go 1.26's fuzz
# coordinator at its deadline and fails with a bare "context deadline exceeded" on a loaded machine (go.dev/issue/75804).
# FUZZSCALE multiplies them (FUZZSCALE=10 fuzzes ten times longer).
FUZZSCALE ?= 1

.PHONY: run test build image bench loadtest soak deps deps-go deps-audio deps-captions deps-npm deps-browser deps-redis fmt-check vet typecheck fuzz clean

run: deps-go deps-audio deps-captions deps-npm
	$(GO) run ./cmd/sfu -dev $(ARGS)

build: deps-go deps-audio deps-captions deps-npm
	$(GO) build -o bin/sfu ./cmd/sfu

# The node's image (Dockerfile: build with cgo, Debian slim runtime). IMAGE names it.
IMAGE ?= edge-sfu
image:
	@command -v docker >/dev/null 2>&1 || { echo "make image: docker is not installed on this machine; install Docker to build the image, or install the node without it (make build, then deploy/sfu.service)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make image: docker cannot reach its daemon (is it running, and may this user use it?)"; exit 1; }
	docker build -t $(IMAGE) .

# The load-test package measures stability and loss of a small meeting in its own process: it runs after the
# others, alone, as a load test must (beside cmd/sfu's tests on two cores it fell to 34 % stability).
test: deps fmt-check vet typecheck
	$(GO) test -race -count=1 -timeout 14m $$($(GO) list ./... | grep -v '/loadtest$$')
	$(GO) test -race -count=1 -timeout 5m ./loadtest
	@echo "a build without cgo: it runs, and refuses what needs cgo with a clear error"
	CGO_ENABLED=0 $(GO) test -count=1 -run 'WithoutCgo' ./cmd/sfu ./media/...
	$(MAKE) fuzz

# The browser client's modules (signaling/web) and the examples: JSDoc types checked by TypeScript, no output.
typecheck: deps-npm
	npx tsc -p tsconfig.json

fuzz: deps-go deps-audio
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$$((150000 * $(FUZZSCALE)))x ./signaling/protocol
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$$((10000 * $(FUZZSCALE)))x ./media/opus
	$(GO) test -run='^$$' -fuzz=FuzzRTCP -fuzztime=$$((50000 * $(FUZZSCALE)))x ./sfu/forward
	$(GO) test -run='^$$' -fuzz=FuzzOffer -fuzztime=$$((2000 * $(FUZZSCALE)))x -fuzzminimizetime=2s ./sfu
	$(GO) test -run='^$$' -fuzz=FuzzFeedback -fuzztime=$$((100000 * $(FUZZSCALE)))x ./sfu/bwe

bench: deps-go deps-audio deps-captions deps-npm
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

# The default load test: 500 users (50 rooms of 10, 2 publishers each) for 60 s against a node it starts on
# loopback. LOADTEST_ARGS adds or overrides flags of cmd/loadtest, e.g. LOADTEST_ARGS="-users 200 -duration 30s".
LOADTEST_ARGS ?=
loadtest: deps-go deps-audio deps-captions deps-npm
	$(GO) build -o bin/sfu ./cmd/sfu
	$(GO) build -o bin/loadtest ./cmd/loadtest
	@bin/sfu -dev -addr 127.0.0.1:7880 -udp 127.0.0.1:7882 -ice-ip 127.0.0.1 -log-level warn -pprof 127.0.0.1:6060 -room-config loadtest/rooms.json -max-unjoined-per-ip 0 & \
	pid=$$!; trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null' EXIT INT TERM; \
	bin/loadtest -url http://127.0.0.1:7880 -json loadtest.json -html loadtest.html $(LOADTEST_ARGS)

# The soak: 100 users (10 meetings of 10) for 10 minutes; the summary's sfu line gives the server's memory and
# goroutine trends after the joins (sfu_rss_slope_mb_per_min, sfu_goroutines_slope_per_min in soak.json).
soak:
	$(MAKE) loadtest LOADTEST_ARGS="-users 100 -rooms 10 -duration 10m -quiet -json soak.json -html soak.html $(SOAK_ARGS)"

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet: deps-go deps-audio deps-captions
	$(GO) vet ./...

deps: deps-go deps-audio deps-captions deps-npm deps-browser deps-redis

deps-go:
	@command -v $(GO) >/dev/null || { echo "Go is missing: install Go 1.26 (https://go.dev/dl)"; exit 1; }
	$(GO) mod download

# Audio: libopus (the pipeline's encoder; opusfile is needed to build its Go binding), speexdsp (a denoiser),
# pkg-config for cgo, and espeak-ng, which the tests use to make speech.
AUDIO_PKGS := libopus-dev libopusfile-dev libspeexdsp-dev pkg-config espeak-ng
deps-audio:
	@if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists opus opusfile speexdsp && command -v espeak-ng >/dev/null 2>&1; }; then \
		echo "installing $(AUDIO_PKGS)"; \
		$(APT) update -q && $(APT) install -y -q $(AUDIO_PKGS); \
	fi

# Captions: PocketSphinx with its US English model (the built-in recognizer), OpenCC (Chinese scripts) and
# Apertium with the English-Spanish pair (translators).
CAPTION_PKGS := libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us libopencc-dev opencc apertium apertium-eng-spa
deps-captions:
	@if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists pocketsphinx sphinxbase opencc && \
		[ -d /usr/share/pocketsphinx/model/en-us/en-us ] && command -v apertium >/dev/null 2>&1 && \
		apertium -l 2>/dev/null | grep -q '^ *eng-spa$$'; }; then \
		echo "installing $(CAPTION_PKGS)"; \
		$(APT) update -q && $(APT) install -y -q $(CAPTION_PKGS); \
	fi

# npm packages whose files the server loads or serves at run time (RNNoise's WebAssembly build; the background
# blur's segmentation model, script and WebAssembly for the browser client), and the type checker of the browser
# client (a dev dependency), pinned by package-lock.json.
deps-npm:
	@if [ ! -f node_modules/@echogarden/rnnoise-wasm/rnnoise.wasm ] || [ ! -x node_modules/.bin/tsc ] || \
		[ ! -f node_modules/@mediapipe/selfie_segmentation/selfie_segmentation_landscape.tflite ]; then \
		command -v npm >/dev/null 2>&1 || { $(APT) update -q && $(APT) install -y -q nodejs npm; }; \
		npm ci --no-audit --no-fund; \
	fi

# Redis: the multi-node tests start their own redis-server on loopback.
deps-redis:
	@if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then \
		echo "installing redis-server"; \
		$(APT) update -q && $(APT) install -y -q redis-server; \
	fi

# Debian's Chromium drives the browser end-to-end test.
deps-browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing chromium"; \
		$(APT) update -q && $(APT) install -y -q chromium; \
	fi

clean:
	rm -rf bin loadtest.json loadtest.html soak.json soak.html
