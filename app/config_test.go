package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestConfigPrecedence: flags beat the environment, which beats the file,
// which beats the defaults, key by key.
func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "imgpipe.yaml")
	yaml := `
http:
  listen: 127.0.0.1:7001
  max_upload_bytes: 1000
nats:
  url: nats://from-file:4222
store:
  url: mongodb://from-file/imgpipe
log:
  level: warn
transform:
  presets:
    avatar: width=64&height=64&fit=cover
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IMGPIPE_NATS_URL", "nats://from-env:4222")
	t.Setenv("IMGPIPE_LOG_LEVEL", "debug")
	t.Setenv("IMGPIPE_WORKERS_SAVE_WORKERS", "7")
	t.Setenv("IMGPIPE_SHUTDOWN_TIMEOUT", "5s")
	t.Setenv("IMGPIPE_NATS_SYNC_ALWAYS", "true")

	cmd := NewRootCommand()
	serve, _, err := cmd.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	flags.AddFlagSet(serve.Flags())
	if err := flags.Parse([]string{"--log-level", "error", "--roles", "api"}); err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	def.Roles = []string{RoleAPI, RoleUI}
	cfg, err := Load(flags, file, def)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"flag over env (log.level)", cfg.Log.Level, "error"},
		{"flag over default (roles)", strings.Join(cfg.Roles, ","), "api"},
		{"env over file (nats.url)", cfg.NATS.URL, "nats://from-env:4222"},
		{"env over default (workers)", cfg.Workers.SaveWorkers, 7},
		{"env duration", cfg.ShutdownTimeout, 5 * time.Second},
		{"env bool (nats.sync_always)", cfg.NATS.SyncAlways, true},
		{"file over default (listen)", cfg.HTTP.Listen, "127.0.0.1:7001"},
		{"file over default (limit)", cfg.HTTP.MaxUploadBytes, int64(1000)},
		{"file (store.url)", cfg.Store.URL, "mongodb://from-file/imgpipe"},
		{"file preset added", cfg.Transform.Presets["avatar"], "width=64&height=64&fit=cover"},
		{"default kept (log.format)", cfg.Log.Format, "text"},
		{"default preset kept", cfg.Transform.Presets["thumb"] != "", true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// TestConfigValidation: mistakes are reported together, each saying what
// to fix.
func TestConfigValidation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Roles = []string{"api", "painter"}
	cfg.Log.Format = "xml"
	cfg.HTTP.Listen = "nowhere"
	cfg.HTTP.CORSOrigins = []string{"ftp://x"}
	cfg.NATS.Replicas = 7
	cfg.Transform.Presets = map[string]string{"bad": "width=-5"}
	cfg.HTTP.DrainDelay = 20 * time.Second // of a 30 s drain
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{`unknown role "painter"`, "--nats is required, or IMGPIPE_NATS_URL, or nats.url", "--store is required, or IMGPIPE_STORE_URL, or store.url",
		`log.format "xml"`, `http.listen "nowhere"`, `http.cors_origins: "ftp://x"`, "nats.replicas must be 1..5, got 7", "bad", "http.drain_delay (20s) may be at most half of shutdown_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// A transform worker whose ack wait a render could outlast.
	cfg = DefaultConfig()
	cfg.Embedded = true
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	cfg.NATS.AckWait = cfg.Transform.Timeout
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "nats.ack_wait") {
		t.Errorf("ack wait no longer than the transform timeout: %v", err)
	}
	cfg.Roles = []string{RoleAPI} // no transform role: no constraint
	if err := cfg.Validate(); err != nil {
		t.Errorf("api only: %v", err)
	}
}

func TestConfigFileTypo(t *testing.T) {
	file := filepath.Join(t.TempDir(), "imgpipe.yaml")
	if err := os.WriteFile(file, []byte("http:\n  lisen: :8080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(pflag.NewFlagSet("x", pflag.ContinueOnError), file, DefaultConfig())
	if err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("a misspelt key must be refused by name, got %v", err)
	}
}

// The file is YAML whatever its name says: none, .conf, or .json (which
// YAML reads too).
func TestConfigFileOfAnyName(t *testing.T) {
	for name, text := range map[string]string{
		"imgpipe":      "http:\n  listen: 127.0.0.1:9001\n",
		"imgpipe.conf": "http:\n  listen: 127.0.0.1:9001\n",
		"imgpipe.json": `{"http": {"listen": "127.0.0.1:9001"}}`,
	} {
		file := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(pflag.NewFlagSet("x", pflag.ContinueOnError), file, DefaultConfig())
		if err != nil || cfg.HTTP.Listen != "127.0.0.1:9001" {
			t.Errorf("%s: listen %q, %v", name, cfg.HTTP.Listen, err)
		}
	}
}

// TestExampleConfigLoads keeps configs/imgpipe.example.yaml true: every key
// in it exists and the whole validates.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load(pflag.NewFlagSet("x", pflag.ContinueOnError), "../configs/imgpipe.example.yaml", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.Replicas != 3 || cfg.Transform.Presets["avatar"] == "" || cfg.Transform.Presets["web"] == "" {
		t.Errorf("example not applied: replicas %d, presets %v", cfg.NATS.Replicas, cfg.Transform.Presets)
	}
}

// A list key set through the environment is split at commas.
func TestConfigListFromEnvironment(t *testing.T) {
	t.Setenv("IMGPIPE_HTTP_CORS_ORIGINS", "https://a.example,https://b.example")
	cfg, err := Load(pflag.NewFlagSet("x", pflag.ContinueOnError), "", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.HTTP.CORSOrigins; len(got) != 2 || got[0] != "https://a.example" || got[1] != "https://b.example" {
		t.Fatalf("cors origins %q", got)
	}
}

// A map key set through the environment is a JSON object; its presets
// join the file's and the built-in ones, and a malformed one is refused saying how to
// write it.
func TestConfigMapFromEnvironment(t *testing.T) {
	t.Setenv("IMGPIPE_TRANSFORM_PRESETS", `{"card":"width=600&height=315&fit=cover","thumb":"width=99"}`)
	cfg, err := Load(pflag.NewFlagSet("x", pflag.ContinueOnError), "", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Transform.Presets
	if p["card"] != "width=600&height=315&fit=cover" || p["thumb"] != "width=99" || p["web"] != DefaultConfig().Transform.Presets["web"] {
		t.Fatalf("presets %q: want card added, thumb replaced, web kept", p)
	}
	if err := cfg.Transform.Validate(); err != nil {
		t.Fatal(err)
	}
	// With a file too, each layer adds its own: environment, file, built-in.
	file := filepath.Join(t.TempDir(), "imgpipe.yaml")
	if err := os.WriteFile(file, []byte("transform:\n  presets:\n    avatar: width=64\n    card: width=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(pflag.NewFlagSet("x", pflag.ContinueOnError), file, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p = cfg.Transform.Presets
	if p["card"] != "width=600&height=315&fit=cover" || p["avatar"] != "width=64" || p["thumb"] != "width=99" || p["web"] == "" {
		t.Fatalf("presets %q: want the environment's card and thumb, the file's avatar, the built-in web", p)
	}
	// An empty spec removes a preset, a built-in one included: a lowered
	// output limit refused to start because of the built-in web preset.
	t.Setenv("IMGPIPE_TRANSFORM_MAX_OUTPUT_DIMENSION", "1000")
	t.Setenv("IMGPIPE_TRANSFORM_PRESETS", `{}`)
	cfg, err = Load(pflag.NewFlagSet("x", pflag.ContinueOnError), "", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Transform.Validate(); err == nil || !strings.Contains(err.Error(), "presets.web") || !strings.Contains(err.Error(), "remove it with an empty one") {
		t.Fatalf("a built-in preset over the lowered limit: %v, want it named, with how to remove it", err)
	}
	t.Setenv("IMGPIPE_TRANSFORM_PRESETS", `{"web":""}`)
	t.Setenv("IMGPIPE_TRANSFORM_DEFAULT_SPEC", "width=1000&height=1000&fit=inside")
	cfg, err = Load(pflag.NewFlagSet("x", pflag.ContinueOnError), "", DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Transform.Presets["web"]; ok || cfg.Transform.Presets["thumb"] == "" {
		t.Fatalf("presets %q: want web removed, thumb kept", cfg.Transform.Presets)
	}
	if err := cfg.Transform.Validate(); err != nil {
		t.Fatalf("with web removed: %v", err)
	}
	t.Setenv("IMGPIPE_TRANSFORM_MAX_OUTPUT_DIMENSION", "")
	t.Setenv("IMGPIPE_TRANSFORM_DEFAULT_SPEC", "")
	t.Setenv("IMGPIPE_TRANSFORM_PRESETS", "card=width=600")
	if _, err := Load(pflag.NewFlagSet("x", pflag.ContinueOnError), "", DefaultConfig()); err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Fatalf("a preset map that is not JSON: %v", err)
	}
}

// TestDevRunsEveryRole: a config file shared with worker processes, or
// IMGPIPE_ROLES, does not narrow dev; serve and worker take the file's list.
func TestDevRunsEveryRole(t *testing.T) {
	file := filepath.Join(t.TempDir(), "imgpipe.yaml")
	if err := os.WriteFile(file, []byte("roles: [transform, save2db]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(command string, roles []string, args ...string) (Config, []string) {
		t.Helper()
		root := NewRootCommand()
		cmd, _, err := root.Find([]string{command})
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Flags().Parse(append([]string{"--config", file}, args...)); err != nil {
			t.Fatal(err)
		}
		cfg, ignored, err := commandConfig(cmd, roles, command == "dev")
		if err != nil {
			t.Fatal(err)
		}
		return cfg, ignored
	}
	workerRoles := []string{RoleTransform, RoleSave2DB, RoleLogger}
	t.Setenv("IMGPIPE_ROLES", "") // whatever the environment running the tests has (empty is unset, to viper)
	cfg, ignored := config("dev", AllRoles)
	if strings.Join(cfg.Roles, ",") != strings.Join(AllRoles, ",") || strings.Join(ignored, ",") != "transform,save2db" {
		t.Errorf("dev with the file: roles %v, ignored %v", cfg.Roles, ignored)
	}
	t.Setenv("IMGPIPE_ROLES", "api")
	if cfg, ignored = config("dev", AllRoles); len(cfg.Roles) != len(AllRoles) || strings.Join(ignored, ",") != "api" {
		t.Errorf("dev with IMGPIPE_ROLES: roles %v, ignored %v", cfg.Roles, ignored)
	}
	t.Setenv("IMGPIPE_ROLES", "")
	t.Setenv("IMGPIPE_NATS_URL", "nats://n1:4222")
	t.Setenv("IMGPIPE_STORE_URL", "mongodb://m1/imgpipe")
	if cfg, ignored = config("worker", workerRoles); strings.Join(cfg.Roles, ",") != "transform,save2db" || ignored != nil {
		t.Errorf("worker with the file: roles %v, ignored %v", cfg.Roles, ignored)
	}
	if cfg, _ = config("worker", workerRoles, "--roles", "logger"); strings.Join(cfg.Roles, ",") != "logger" {
		t.Errorf("worker --roles over the file: roles %v", cfg.Roles)
	}
}

// TestStageCacheOnlyWhereBlobsAreShared: the bus's cache of staged blobs
// is for a process where one role reads what another staged.
func TestStageCacheOnlyWhereBlobsAreShared(t *testing.T) {
	for roles, want := range map[string]bool{
		"api,ui,transform,save2db,logger": true,
		"api,transform":                   true,
		"transform,save2db":               true,
		"api,save2db":                     true,
		"api,ui":                          false,
		"transform":                       false,
		"save2db,logger":                  false,
	} {
		c := Config{Roles: strings.Split(roles, ",")}
		if got := c.sharesBlobs(); got != want {
			t.Errorf("%s: %v, want %v", roles, got, want)
		}
	}
}
