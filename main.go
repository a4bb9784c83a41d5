// Command imgpipe runs any subset of the pipeline's roles; see app.
package main

import (
	"os"

	"github.com/imgpipe/imgpipe/app"
)

func main() { os.Exit(app.Main()) }
