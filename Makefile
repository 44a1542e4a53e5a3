# The two commands: `make run` starts a node on :7880 in dev mode; `make test` runs every test.
# Each installs what it needs when it is missing (Debian packages need root or sudo).

GO      ?= go
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT     := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600
FUZZTIME ?= 10s

.PHONY: run test build bench deps deps-go deps-browser fmt-check vet fuzz clean

run: deps-go
	$(GO) run ./cmd/sfu $(ARGS)

build: deps-go
	$(GO) build -o bin/sfu ./cmd/sfu

test: deps fmt-check vet
	$(GO) test -race -count=1 -timeout 12m ./...
	$(MAKE) fuzz

fuzz: deps-go
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./signaling

bench: deps-go
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet: deps-go
	$(GO) vet ./...

deps: deps-go deps-browser

deps-go:
	@command -v $(GO) >/dev/null || { echo "Go is missing: install Go 1.26 (https://go.dev/dl)"; exit 1; }
	$(GO) mod download

# Debian's Chromium drives the browser end-to-end test.
deps-browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing chromium"; \
		$(APT) update -q && $(APT) install -y -q chromium; \
	fi

clean:
	rm -rf bin
