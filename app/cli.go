package app

import (
	"context"
	"fmt"
	"os"
	"os/signal"
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
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML configuration file")
	pf.String("data-dir", "./data", "where the embedded NATS server and the local store keep their files")
	pf.String("listen", "127.0.0.1:8080", "HTTP listen address (API, UI, health and metrics)")
	pf.String("nats", "", "NATS server URLs, comma-separated (nats://h1:4222,h2:4222)")
	pf.String("store", "", "store URL: mongodb://… for MongoDB GridFS, or local:///path")
	pf.String("instance", "", "this process's name in activity records (default host-pid)")
	pf.String("log-format", "text", "log format: text or json")
	pf.String("log-level", "info", "log level: debug, info, warn or error")

	root.AddCommand(
		runCommand("dev", "Run every role in one process on embedded NATS and the local store",
			"Runs api, ui, transform, save2db and logger in one process. Without --nats it starts an\nembedded NATS server with JetStream under --data-dir (no TCP port); without --store it\nkeeps images in the embedded local store under --data-dir.\n\n"+rolesHelp,
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
			def := DefaultConfig()
			def.Roles = defaultRoles
			file, _ := cmd.Flags().GetString("config")
			cfg, err := Load(cmd.Flags(), file, def)
			if err != nil {
				return err
			}
			cfg.Embedded = embedded
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			log := NewLogger(cfg.Log, os.Stderr)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			log.Info("imgpipe starting", "version", Version, "command", name, "roles", strings.Join(cfg.Roles, ","), "instance", cfg.Instance)
			return New(cfg, log).Run(ctx)
		},
	}
	if !embedded {
		cmd.Flags().String("roles", strings.Join(defaultRoles, ","), "roles to run: "+strings.Join(AllRoles, ","))
	}
	return cmd
}

// Main runs the command line and returns the process exit code.
func Main() int {
	if err := NewRootCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "imgpipe:", err)
		return 1
	}
	return 0
}
