package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X .../app.Version=…".
var Version = "dev"

const rolesHelp = `Roles:
  api        REST API: POST images in, GET status, results, originals, activity
  ui         the web page for uploading and watching images
  transform  takes uploads off the transform queue and renders them with libvips
  save2db    persists originals, results and records in the store for good
  logger     keeps every activity event, per image and as a global feed

Every process also serves /healthz, /readyz and /metrics on --listen.
Configuration: flags, then IMGPIPE_* environment variables (IMGPIPE_NATS_URL,
IMGPIPE_STORE_URL, IMGPIPE_HTTP_LISTEN, ...), then the --config YAML file
(see configs/imgpipe.example.yaml), then defaults.`

// NewRootCommand builds the imgpipe command line.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "imgpipe",
		Short:         "Upload and transform huge numbers of images through a publish/subscribe pipeline",
		Long:          "imgpipe takes images over HTTP, transforms them with libvips on a pool of workers\nfed by NATS JetStream, and keeps originals, results and activity for good.\n\n" + rolesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		runCommand("dev", "Run every role in one process on embedded NATS and the local store",
			"Runs api, ui, transform, save2db and logger in one process, whatever roles the\nenvironment or --config name. Without a NATS URL (--nats, IMGPIPE_NATS_URL or nats.url)\nit starts an embedded NATS server with JetStream under --data-dir (no TCP port); without\na store URL (--store, IMGPIPE_STORE_URL or store.url) it keeps images in the embedded\nlocal store under --data-dir.\n\n"+rolesHelp,
			AllRoles, true),
		runCommand("serve", "Run the HTTP roles (api, ui) against a NATS cluster and a store",
			"Runs the roles given by --roles (default api,ui). Needs --nats and --store.\n\n"+rolesHelp,
			[]string{RoleAPI, RoleUI}, false),
		runCommand("worker", "Run the worker roles (transform, save2db, logger) against a NATS cluster and a store",
			"Runs the roles given by --roles (default transform,save2db,logger). Needs --nats and --store.\n\n"+rolesHelp,
			[]string{RoleTransform, RoleSave2DB, RoleLogger}, false),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "imgpipe", Version) },
		},
	)
	return root
}

func runCommand(name, short, long string, defaultRoles []string, embedded bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, ignored, err := commandConfig(cmd, defaultRoles, embedded)
			if err != nil {
				if refusalFormat(cmd, cfg) == "json" {
					// A collector of JSON lines gets the refusal too;
					// Main prints it plainly, as text logs would.
					NewLogger(LogConfig{Format: "json", Level: "error"}, os.Stderr).Error("imgpipe not started", "err", err)
				}
				return err
			}
			log := NewLogger(cfg.Log, os.Stderr)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			running := make(chan struct{})
			defer close(running)
			go func() {
				// Once a signal has begun the drain, a second one takes
				// the default action, ending the process at once: what
				// one expects of a process slow to stop. Nothing accepted
				// is lost by it, as by any crash.
				select {
				case <-ctx.Done():
					stop()
					log.Info("signal received: draining; a second signal stops at once")
				case <-running:
				}
			}()
			if ignored != nil {
				log.Warn("dev runs every role: roles from the environment or the config file are ignored", "ignored", strings.Join(ignored, ","))
			}
			log.Info("imgpipe starting", "version", Version, "command", name, "roles", strings.Join(cfg.Roles, ","), "instance", cfg.Instance)
			if err := New(cfg, log).Run(ctx); err != nil {
				// In the log's own format too: a collector of JSON lines
				// would otherwise see the process end without a reason.
				// (Main prints it plainly on stderr as well.)
				log.Error("imgpipe stopped", "err", err)
				return err
			}
			// The last word of a clean stop: an operator reading the log
			// of a drain sees it ended, not only that it began.
			log.Info("imgpipe stopped: work drained, bus and store closed")
			return nil
		},
	}
	// The run commands' own flags, not the root's persistent ones, which
	// every command (version too) would list in its help.
	f := cmd.Flags()
	f.String("config", "", "YAML configuration file")
	f.String("data-dir", "./data", "where the embedded NATS server and the local store keep their files")
	f.String("listen", "127.0.0.1:8080", "HTTP listen address (API, UI, health and metrics)")
	f.String("nats", "", "NATS server URLs, comma-separated (nats://h1:4222,h2:4222)")
	f.String("store", "", "store URL: mongodb://… for MongoDB GridFS, or local:///path")
	f.String("rebind-store", "", "identity of the store the bus's images are kept in (as a refusal names it): move the bus to --store, after moving the images there; does nothing once moved")
	f.String("instance", "", "this process's name in activity records (default host-pid)")
	f.String("log-format", "text", "log format: text or json")
	f.String("log-level", "info", "log level: debug, info, warn or error")
	if !embedded {
		f.String("roles", strings.Join(defaultRoles, ","), "roles to run: "+strings.Join(AllRoles, ","))
	}
	return cmd
}

// refusalFormat is the log format a refused configuration asks for, as far
// as it can be told: a file or a value that did not load leaves cfg at the
// defaults, so the flag and the environment are read directly.
func refusalFormat(cmd *cobra.Command, cfg Config) string {
	if f := cmd.Flags().Lookup("log-format"); f != nil && f.Changed {
		return f.Value.String()
	}
	if v := os.Getenv("IMGPIPE_LOG_FORMAT"); v != "" {
		return v
	}
	return cfg.Log.Format
}

// commandConfig loads and validates the configuration of a run command.
// dev runs every role whatever a shared config file or IMGPIPE_ROLES say
// (they are meant for serve and worker); the roles it set aside are
// returned so that it can say so.
func commandConfig(cmd *cobra.Command, defaultRoles []string, embedded bool) (cfg Config, ignored []string, err error) {
	def := DefaultConfig()
	def.Roles = defaultRoles
	file, _ := cmd.Flags().GetString("config")
	if cfg, err = Load(cmd.Flags(), file, def); err != nil {
		return cfg, nil, err
	}
	cfg.Embedded = embedded
	if embedded && !slices.Equal(slices.Sorted(slices.Values(cfg.Roles)), slices.Sorted(slices.Values(defaultRoles))) {
		ignored, cfg.Roles = cfg.Roles, slices.Clone(defaultRoles)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, ignored, nil
}

// Main runs the command line and returns the process exit code.
func Main() int {
	if err := NewRootCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "imgpipe:", err)
		return 1
	}
	return 0
}
