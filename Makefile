# PedOS secure updates. `make demo` and `make test` are the two entry points
# (both install missing system packages first when run as root).
# Go from /usr/local/go first (Debian's own golang is too old for go.mod): where the machine
# has no usable Go, `deps` installs it there (scripts/install-go.sh), after make read this file.
export PATH := /usr/local/go/bin:$(PATH)
GO          ?= go
BIN         := $(CURDIR)/bin
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 4s
export CGO_ENABLED := 0

.PHONY: all deps build lint test unit fuzz-short fuzz bench demo packages attack clean

all: build

deps:
	@scripts/install-deps.sh
	@scripts/install-go.sh

# The commit time is pedos-receive-updates' own time floor (verify.md §2 step 4).
# Recursive (=), not :=, so that git is asked when a recipe runs: after `deps` installed it
# on a fresh machine, not when make read this file.
BUILD_TIME = $(shell git log -1 --format=%cI 2>/dev/null)
# What --version prints (internal/release/release.go).
VERSION_PKG = pedos.dev/updates/internal/release
LDFLAGS    = -X main.buildTime=$(BUILD_TIME) -X $(VERSION_PKG).name=$(shell cat packaging/VERSION) \
	-X $(VERSION_PKG).commit=$(shell git describe --always --dirty --abbrev=12 2>/dev/null) \
	-X $(VERSION_PKG).commitTime=$(BUILD_TIME)

build:
	@mkdir -p $(BIN)
	@[ -n "$(BUILD_TIME)" ] || echo "warning: no commit time (no git, or not a git checkout): pedos-receive-updates is built without its build-time floor (verify.md §2 step 4)" >&2
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit: build
	PEDOS_BIN=$(BIN) $(GO) test -count=1 -timeout 15m ./...

# Each fuzz target for FUZZTIME (short in `make test`, long in `make fuzz`).
fuzz-short:
	@scripts/fuzz.sh $(FUZZTIME)

fuzz:
	@KEEP_CORPUS=1 scripts/fuzz.sh $${FUZZTIME_LONG:-60s}

test: deps lint unit fuzz-short

bench: deps build
	@scripts/bench.sh

demo: deps build
	@scripts/demo.sh

# The adversarial suite (docs/attacks.md); LONG=1 for its long form.
ATTACK_DIR ?= /tmp/pedos-attack
attack: deps build
	$(BIN)/pedos-lab attack --dir $(ATTACK_DIR) --bin $(BIN) $(if $(LONG),--long)

# RPM and DEB packages into dist/out/ (nfpm and go-md2man from the Go module proxy).
packages: deps
	@scripts/packages.sh

clean:
	rm -rf $(BIN)
