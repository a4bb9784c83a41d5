package transform

import (
	"log/slog"
	"net/http"
	"sync/atomic"
)

// Engine validates specs, probes uploads and processes images. It is safe
// for concurrent use; each Process call runs one libvips pipeline.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	presets map[string]string // name -> canonical spec
	closed  atomic.Bool
}

// New checks cfg, starts libvips once per process (its GLib messages go to
// log from then on), and sets libvips' concurrency and cache from cfg. Those
// two are process-wide: with several Engines the last one's values apply.
func New(cfg Config, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "transform")
	vipsLogger.Store(log)
	if err := startVips(); err != nil {
		return nil, err
	}
	configureVips(cfg)

	e := &Engine{cfg: cfg, log: log, presets: map[string]string{}}
	for name, q := range cfg.Presets {
		spec, err := parseSpecQuery(q, cfg.limits())
		if err != nil { // Validate already parsed it
			return nil, err
		}
		e.presets[name] = spec.Canonical()
	}
	return e, nil
}

// Close marks the engine closed: later calls fail. libvips itself stays
// up, since it cannot be restarted within a process.
func (e *Engine) Close() { e.closed.Store(true) }

// Config returns the configuration the engine runs with.
func (e *Engine) Config() Config { return e.cfg }

// Presets returns preset name -> canonical query.
func (e *Engine) Presets() map[string]string {
	out := make(map[string]string, len(e.presets))
	for k, v := range e.presets {
		out[k] = v
	}
	return out
}

func (e *Engine) checkOpen() error {
	if e.closed.Load() {
		return errorf(http.StatusServiceUnavailable, CodeInternal, "image engine is closed")
	}
	return nil
}
