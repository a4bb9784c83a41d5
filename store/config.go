package store

// Config chooses the store. The zero value is the local store under the data
// directory.
type Config struct {
	// URL picks the implementation by scheme: empty or "local:" for the
	// default directory <data-dir>/store, "local:///abs/path" or
	// "file:///abs/path" for another directory, "mongodb://" or
	// "mongodb+srv://" for MongoDB (the path names the database, default
	// "imgpipe"). See ParseURL.
	URL string `mapstructure:"url"`
	// Rebind, the identity of the store the bus's images are kept in,
	// moves them to this store (bus.StoreBinding): for an operator who
	// moved the images here for good. Naming the store it replaces makes
	// it a one-off: once the bus has moved, it matches nothing, so left
	// set it cannot let a process with a mistyped URL take the bus, nor
	// two processes take it from each other.
	Rebind string `mapstructure:"rebind"`
}

// Validate checks the URL's scheme and shape without connecting anywhere.
func (c Config) Validate() error {
	_, err := ParseURL(c.URL)
	return err
}
