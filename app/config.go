// Package app composes the packages into one process: configuration, the
// command line, and the App that opens the bus and the store and runs the
// chosen roles under one lifecycle.
package app

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/bus/natsbus"
	"github.com/imgpipe/imgpipe/roles"
	"github.com/imgpipe/imgpipe/store"
	"github.com/imgpipe/imgpipe/transform"
	"github.com/imgpipe/imgpipe/web"
)

// Role names, as given to --roles.
const (
	RoleAPI       = "api"
	RoleUI        = "ui"
	RoleTransform = "transform"
	RoleSave2DB   = "save2db"
	RoleLogger    = "logger"
)

// AllRoles in start order: consumers first, the HTTP face last.
var AllRoles = []string{RoleLogger, RoleSave2DB, RoleTransform, RoleAPI, RoleUI}

// Config is the whole process's configuration. Each part belongs to its
// package, which owns its defaults and validation; this only composes.
type Config struct {
	DataDir string `mapstructure:"data_dir"`
	// DataDirMinFree is the room `imgpipe dev` keeps free on the data
	// dir's disk: uploads are refused (503) below it, so that save2db can
	// still move what was accepted into the store (roles.RoomError). 0
	// takes uploads to the last byte.
	DataDirMinFree  int64            `mapstructure:"data_dir_min_free_bytes"`
	Roles           []string         `mapstructure:"roles"`
	Instance        string           `mapstructure:"instance"`
	ShutdownTimeout time.Duration    `mapstructure:"shutdown_timeout"`
	StartupTimeout  time.Duration    `mapstructure:"startup_timeout"`
	Log             LogConfig        `mapstructure:"log"`
	HTTP            web.Config       `mapstructure:"http"`
	NATS            natsbus.Config   `mapstructure:"nats"`
	Store           store.Config     `mapstructure:"store"`
	Transform       transform.Config `mapstructure:"transform"`
	Workers         roles.Config     `mapstructure:"workers"`

	// Embedded is set by `imgpipe dev`: an in-process NATS server and the
	// local store under DataDir stand in for URLs not given.
	Embedded bool `mapstructure:"-"`
}

// LogConfig chooses the log format and level.
type LogConfig struct {
	Format string `mapstructure:"format"` // text or json
	Level  string `mapstructure:"level"`  // debug, info, warn, error
}

// DefaultConfig is what runs with no flags, environment or file.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		DataDir:         "./data",
		DataDirMinFree:  256 << 20,
		Roles:           slices.Clone(AllRoles),
		Instance:        fmt.Sprintf("%s-%d", host, os.Getpid()),
		ShutdownTimeout: 30 * time.Second,
		StartupTimeout:  2 * time.Minute,
		Log:             LogConfig{Format: "text", Level: "info"},
		HTTP:            web.DefaultConfig(),
		NATS:            natsDefaults(),
		Transform:       transform.DefaultConfig(),
		Workers:         roles.DefaultConfig(),
	}
}

// natsDefaults has no URL: dev then embeds a server, and serve and worker
// ask for one rather than guess.
func natsDefaults() natsbus.Config {
	c := natsbus.DefaultConfig()
	c.URL = ""
	return c
}

// Validate checks everything and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Roles) == 0 {
		errs = append(errs, errors.New("no roles: give --roles with one or more of "+strings.Join(AllRoles, ",")))
	}
	for _, r := range c.Roles {
		if !slices.Contains(AllRoles, r) {
			errs = append(errs, fmt.Errorf("unknown role %q: roles are %s", r, strings.Join(AllRoles, ", ")))
		}
	}
	if !c.Embedded {
		if c.NATS.URL == "" {
			errs = append(errs, errors.New("--nats is required, or IMGPIPE_NATS_URL, or nats.url in --config (for example nats://h1:4222,h2:4222); only `imgpipe dev` runs an embedded server"))
		}
		if c.Store.URL == "" {
			errs = append(errs, errors.New("--store is required, or IMGPIPE_STORE_URL, or store.url in --config (for example mongodb://db1,db2/imgpipe); only `imgpipe dev` uses the embedded local store"))
		}
	}
	if c.DataDirMinFree < 0 {
		errs = append(errs, errors.New("data_dir_min_free_bytes must not be negative"))
	}
	if c.Embedded && c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if c.ShutdownTimeout <= 0 || c.StartupTimeout <= 0 {
		errs = append(errs, errors.New("shutdown_timeout and startup_timeout must be positive"))
	}
	if c.HTTP.DrainDelay > 0 && c.HTTP.DrainDelay > c.ShutdownTimeout/2 {
		// The delay comes out of the drain's time: the roles need the rest.
		errs = append(errs, fmt.Errorf("http.drain_delay (%s) may be at most half of shutdown_timeout (%s), out of which it comes", c.HTTP.DrainDelay, c.ShutdownTimeout))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: use text or json", c.Log.Format))
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		errs = append(errs, err)
	}
	if c.has(RoleTransform) && c.NATS.AckWait <= c.Transform.Timeout {
		// The bus keeps a transform's delivery alive for nats.ack_wait
		// from its start or its last report of progress (between
		// variants): a render may take the whole timeout, and with no more
		// than that a slow but healthy worker is deemed hung and its image
		// goes to a second one (on the last attempt, to the Exhausted
		// verdict: failed).
		errs = append(errs, fmt.Errorf("nats.ack_wait (%s) must be longer than transform.timeout (%s), with room to fetch and stage the image",
			c.NATS.AckWait, c.Transform.Timeout))
	}
	for _, v := range []interface{ Validate() error }{c.HTTP, c.NATS, c.Store, c.Transform, c.Workers} {
		if err := v.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// has reports whether the process runs role r.
func (c *Config) has(r string) bool { return slices.Contains(c.Roles, r) }

// sharesBlobs tells whether one role of this process reads blobs another
// stages (the api's originals, the transformer's results): what the bus's
// cache of staged blobs is for (nats.stage_cache_bytes). A process with
// one of those roles would gain little from it (a watermark read again, a
// result served again) for the memory it holds.
func (c *Config) sharesBlobs() bool {
	n := 0
	for _, r := range []string{RoleAPI, RoleTransform, RoleSave2DB} {
		if c.has(r) {
			n++
		}
	}
	return n > 1
}
