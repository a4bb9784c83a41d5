// Package web is the HTTP face of imgpipe: the REST API, the prototype's
// endpoints, the UI's assets, and the health and metrics endpoints every
// process serves whatever its roles.
package web

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Config is the HTTP listener and the upload limits.
type Config struct {
	Listen string `mapstructure:"listen"`
	// MaxUploadBytes bounds one image; larger ones get 413 before they are
	// read whole.
	MaxUploadBytes int64 `mapstructure:"max_upload_bytes"`
	// MaxFiles bounds the images of one multipart request.
	MaxFiles int `mapstructure:"max_files"`
	// MaxRequestBytes bounds a whole multipart request: the parts are held
	// in memory until each is checked, so MaxFiles × MaxUploadBytes alone
	// would let one request take gigabytes.
	MaxRequestBytes int64 `mapstructure:"max_request_bytes"`
	// MaxInflightUploadBytes bounds the upload bytes one process holds at
	// once, across requests (budget.go); past it uploads get 503.
	MaxInflightUploadBytes int64 `mapstructure:"max_inflight_upload_bytes"`
	// MaxWait bounds ?wait= long polls.
	MaxWait time.Duration `mapstructure:"max_wait"`
	// ReadHeaderTimeout bounds the wait for a request's headers. Without
	// it a client that opens connections and never finishes a request
	// holds a connection and a goroutine each for good, until the process
	// runs out of file descriptors. Bodies are not bounded: a 50 MB upload
	// on a slow link may take minutes, and long polls and /v1/events hold
	// their responses open by design.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	// IdleTimeout closes a kept-alive connection that carries no request
	// for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// CORSOrigins lets pages from these origins call the API from a
	// browser: "https://app.example.com", "https://*.example.com", or "*"
	// for any. Empty (the default), only pages the process serves itself,
	// the UI, can.
	CORSOrigins []string `mapstructure:"cors_origins"`
	// DrainDelay keeps the listener open this long when a drain begins,
	// /readyz answering 503 meanwhile, before it closes: time for a load
	// balancer's health checks to take the process out of rotation while
	// it still answers what they send it. 0 (the default) closes it at
	// once, and new connections are refused from the start of the drain.
	DrainDelay time.Duration `mapstructure:"drain_delay"`
}

// DefaultConfig listens on loopback only: exposing the API is a choice.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:8080", MaxUploadBytes: 50 << 20, MaxFiles: 100, MaxRequestBytes: 256 << 20, MaxInflightUploadBytes: 1 << 30, MaxWait: time.Minute,
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
}

// Validate checks the listen address and limits, reporting every problem
// at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("http.listen %q must be host:port, for example 127.0.0.1:8080 or :8080", c.Listen)
	}
	if c.MaxUploadBytes < 1 {
		bad("http.max_upload_bytes must be positive")
	}
	if c.MaxRequestBytes < c.MaxUploadBytes {
		bad("http.max_request_bytes must be at least http.max_upload_bytes")
	}
	if c.MaxInflightUploadBytes < c.MaxRequestBytes+budgetChunk {
		bad("http.max_inflight_upload_bytes must be at least http.max_request_bytes + %d: the largest request must fit, with the read that finds its end", budgetChunk)
	}
	if c.MaxFiles < 1 {
		bad("http.max_files must be at least 1")
	}
	if c.MaxWait < 0 {
		bad("http.max_wait must not be negative")
	}
	if c.DrainDelay < 0 {
		bad("http.drain_delay must not be negative")
	}
	for _, o := range c.CORSOrigins {
		scheme, host, _ := strings.Cut(o, "://")
		if o != "*" && (scheme != "http" && scheme != "https" || host == "" || strings.Contains(host, "/")) {
			bad("http.cors_origins: %q is not an origin: want scheme://host[:port] (no path), a * wildcard in the host, or * alone", o)
		}
	}
	if c.ReadHeaderTimeout <= 0 || c.IdleTimeout <= 0 {
		bad("http.read_header_timeout and http.idle_timeout must be positive")
	}
	return errors.Join(errs...)
}
