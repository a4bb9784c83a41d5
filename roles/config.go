package roles

import (
	"errors"
	"runtime"
)

// Config sizes the worker roles of one process.
type Config struct {
	// TransformWorkers is how many images this process transforms at once.
	// libvips runs one thread per operation here (see transform.Config).
	// Each image also waits on the bus (fetch the original, stage the
	// result, update the status), so two workers per core keep the cores
	// busy through those waits.
	TransformWorkers int `mapstructure:"transform_workers"`
	// SaveWorkers write to the store at once; writes wait on disk or
	// network, not CPU, so more than cores pays off. The local store
	// shares a commit between the writes of up to 10 ms, or of 8 writers
	// back at once: fewer than 8 save at most 100 rounds a second.
	SaveWorkers int `mapstructure:"save_workers"`
	// LoggerWorkers let the store batch many events into one commit.
	LoggerWorkers int `mapstructure:"logger_workers"`
}

// DefaultConfig sizes workers for this machine.
func DefaultConfig() Config {
	return Config{TransformWorkers: 2 * runtime.NumCPU(), SaveWorkers: 16, LoggerWorkers: 32}
}

// Validate checks the sizes.
func (c Config) Validate() error {
	if c.TransformWorkers < 1 || c.SaveWorkers < 1 || c.LoggerWorkers < 1 {
		return errors.New("workers.transform_workers, workers.save_workers and workers.logger_workers must be at least 1")
	}
	return nil
}
