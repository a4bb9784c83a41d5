package app

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// flagKeys maps command-line flags to configuration keys. Everything else
// is reachable through the file or IMGPIPE_<KEY> variables.
var flagKeys = map[string]string{
	"data-dir":     "data_dir",
	"listen":       "http.listen",
	"nats":         "nats.url",
	"store":        "store.url",
	"rebind-store": "store.rebind",
	"roles":        "roles",
	"instance":     "instance",
	"log-format":   "log.format",
	"log-level":    "log.level",
}

// Load reads the configuration with precedence flags, then environment
// (IMGPIPE_HTTP_LISTEN for http.listen), then the YAML file, then defaults.
// def holds the command's defaults (serve and worker run different roles).
func Load(flags *pflag.FlagSet, file string, def Config) (Config, error) {
	v := viper.New()
	setDefaults(v, "", reflect.ValueOf(def))
	var filePresets map[string]string
	if file != "" {
		v.SetConfigFile(file)
		// YAML whatever the name (JSON is YAML too): viper would go by the
		// extension, and refuse imgpipe.conf as of type "conf".
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return def, fmt.Errorf("config file %s: %w", file, err)
		}
		// Read before the environment is consulted: the file's presets
		// join the environment's below, as the built-in ones do.
		filePresets = v.GetStringMapString("transform.presets")
	}
	v.SetEnvPrefix("IMGPIPE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for name, key := range flagKeys {
		if f := flags.Lookup(name); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return def, err
			}
		}
	}
	var cfg Config
	if err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(dc.DecodeHook, mapFromJSON)
	}); err != nil {
		return def, fmt.Errorf("configuration: %w", err)
	}
	// A map replaces the one below it as a whole in viper. Presets are
	// named things each layer adds to: the environment's join the file's,
	// which join the built-in ones; a name given again is replaced.
	cfg.Transform.Presets = addMissing(addMissing(cfg.Transform.Presets, filePresets), def.Transform.Presets)
	// An empty spec removes the preset of that name, built-in ones
	// included (one that exceeds a lowered limit, say).
	maps.DeleteFunc(cfg.Transform.Presets, func(_, spec string) bool { return spec == "" })
	return cfg, nil
}

// addMissing adds to m the entries of below whose keys m lacks.
func addMissing(m, below map[string]string) map[string]string {
	for k, val := range below {
		if _, ok := m[k]; !ok {
			if m == nil {
				m = map[string]string{}
			}
			m[k] = val
		}
	}
	return m
}

// setDefaults registers every leaf of the default config with viper, which
// is what lets AutomaticEnv find IMGPIPE_ variables for keys no file names.
func setDefaults(v *viper.Viper, prefix string, val reflect.Value) {
	t := val.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fv := val.Field(i)
		if fv.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			setDefaults(v, prefix+tag+".", fv)
			continue
		}
		v.SetDefault(prefix+tag, fv.Interface())
	}
}

// mapFromJSON reads a map key given as a string, which is how one arrives
// from the environment, as a JSON object:
// IMGPIPE_TRANSFORM_PRESETS='{"card":"width=600&height=315&fit=cover"}'.
// Specs hold "=" and "&", so no simpler list syntax would do.
func mapFromJSON(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Map {
		return data, nil
	}
	m := reflect.New(to)
	if err := json.Unmarshal([]byte(data.(string)), m.Interface()); err != nil {
		return nil, fmt.Errorf(`from the environment, a map is a JSON object, such as {"thumb":"width=200&height=200"}: %w`, err)
	}
	return m.Elem().Interface(), nil
}
