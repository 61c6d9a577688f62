# peerwire — common tasks. `make test` is what CI runs.
GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build test test-alloc test-short lint fmt fuzz bench demo tools stress-libp2p-qmux

all: build

build:
	$(GO) build $(PKGS)
	$(GO) build -o bin/peer ./cmd/peer

## test: every test with the race detector (goroutine leaks fail tests via goleak), one
## package at a time so timing-sensitive suites do not starve each other on 2 cores; then
## the allocation tests, which skip themselves under -race.
test:
	$(GO) test -race -count=1 -p 1 -timeout 20m $(PKGS)
	$(MAKE) --no-print-directory test-alloc

## test-alloc: the allocation tests (names containing "Allocat") without the race detector,
## which makes sync.Pool drop items at random.
test-alloc:
	$(GO) test -count=1 -run Allocat $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

## lint: go vet, staticcheck, gofmt and go mod tidy must all be clean.
lint: tools
	$(GO) vet $(PKGS)
	"$$($(GO) env GOPATH)/bin/staticcheck" $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff

tools:
	@test -x "$$($(GO) env GOPATH)/bin/staticcheck" || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

fmt:
	gofmt -w $$(git ls-files '*.go')

## fuzz: run every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## bench: every benchmark, with allocations.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

## demo: the README's first command.
demo:
	$(GO) run ./cmd/peer demo

## stress-libp2p-qmux: the libp2p host tests over QMux under CPU load (other race-enabled
## suites in parallel), ROUNDS times; reproduces the intermittent identify failure noted on
## the QMux issue.
ROUNDS ?= 5
stress-libp2p-qmux:
	@for i in $$(seq 1 $(ROUNDS)); do \
	  ($(GO) test -race -count=1 ./internal/streampool/ ./tests/ ./internal/qmux/ >/dev/null 2>&1 &); \
	  $(GO) test -race -count=3 -run 'TestHostsOverQMux|TestTCPOnlyHostsConnectOverQMux' ./nettransport/libp2pqmux/ || exit 1; \
	  wait; \
	done
