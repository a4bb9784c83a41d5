# imgpipe: `make run` starts everything on one machine, `make test` runs the
# tests. Both install what they need (libvips, Chromium) with apt-get when it
# is missing, so they work on a fresh Debian or Ubuntu machine with Go.

SHELL := /bin/bash
BIN := bin/imgpipe
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/imgpipe/imgpipe/app.Version=$(VERSION)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# (No MALLOC_ARENA_MAX here: imgpipe limits glibc's malloc arenas itself,
# and a test checks it, which the variable would skip.)
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can
# fail a run that found nothing ("context deadline exceeded" at the end of
# -fuzztime, golang/go#75804, fixed in Go 1.27). About 5 to 10 s here.
FUZZTIME ?= 10000x

.PHONY: run build test bench deps test-deps fuzz vet clean

run: deps build
	@echo "imgpipe: open http://127.0.0.1:8080 (Ctrl-C to stop)"
	./$(BIN) dev --data-dir ./data --listen 127.0.0.1:8080

build: deps
	go build -ldflags "$(LDFLAGS)" -o $(BIN) .

test: deps test-deps vet
	go test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

# Each fuzz target briefly: long enough to shake out crashes on new code.
fuzz:
	go test ./transform -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME)
	go test ./transform -run '^$$' -fuzz '^FuzzProbe$$' -fuzztime $(FUZZTIME)

vet:
	go vet ./...

bench: deps build
	go run ./bench

# libvips and its headers (cgo in transform/ needs them to build).
deps:
	@pkg-config --exists vips 2>/dev/null || { \
		echo "installing libvips-dev"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq libvips-dev pkg-config gcc; }

# Chromium for the UI test in a real browser.
test-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		echo "installing chromium"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

clean:
	rm -rf bin
