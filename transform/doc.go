// Package transform turns uploaded image bytes into the outputs a spec asks
// for. It holds all of imgpipe's cgo: libvips is driven through a small C
// bridge (vips_*.c, declared in vips_bridge.h) so that the pipeline can load
// animations, shrink on load, be interrupted on timeout and route libvips'
// warnings into slog.
//
// The flow is ParseRequest (api role: validate the query) -> Probe (api role:
// sniff and check the header, never decode) -> Process (transform role: one
// output per variant). docs/transform.md is the user-facing reference.
package transform
