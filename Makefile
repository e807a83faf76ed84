# sekisho — make test runs every test; make bench the benchmarks.
GO ?= go
PKGS := ./...
FUZZTIME ?= 20s

.PHONY: all build test test-short bench bench-e2e lint fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/sekisho ./cmd/sekisho

# Every test, with the race detector. Tests that need PostgreSQL read
# SEKISHO_TEST_POSTGRES; browser tests need /usr/bin/chromium. With CI=true a
# missing service is a failure, never a skip.
test:
	$(GO) vet $(PKGS)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Go micro-benchmarks (no pass/fail on speed; see docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./policy/... ./audit/... ./authn/... ./proxy/... ./store/... ./internal/app/... ./monitor/... ./admin/... ./internal/h1transport/...

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# Runs every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin

# End-to-end load comparison with nginx and the Go floor; writes docs/performance.md.
bench-e2e:
	$(GO) run ./scripts/bench
