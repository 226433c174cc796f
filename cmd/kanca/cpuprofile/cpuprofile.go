// Package cpuprofile is the --cpuprofile of the commands that take one:
// a CPU profile (go tool pprof) of the command's run.
package cpuprofile

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Start profiles into path until the returned stop is called; an empty
// path profiles nothing.
func Start(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
