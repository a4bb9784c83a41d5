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
	// Rebind makes this store the one the bus's images are kept in, in
	// place of the one recorded (bus.StoreBinding): once, after moving the
	// images to another store for good. Left on, it would let a process
	// with a mistyped URL take the bus away from every other.
	Rebind bool `mapstructure:"rebind"`
}

// Validate checks the URL's scheme and shape without connecting anywhere.
func (c Config) Validate() error {
	_, err := ParseURL(c.URL)
	return err
}
