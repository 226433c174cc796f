// Package version says which kanca this is: the module version and the
// VCS revision the binary was built from, read from its build info, so an
// admin (kanca version), a receiver (User-Agent), a dashboard (/metrics)
// and a log reader (the first line) all see the same answer.
package version

import (
	"runtime/debug"
	"strings"
	"sync"
)

// Info is what the build recorded.
type Info struct {
	Version  string // module version: v1.2.3, a pseudo-version, or "(devel)"
	Revision string // VCS revision, "" when not built from a checkout
	Time     string // the revision's commit time, RFC 3339
	Modified bool   // built from a checkout with uncommitted changes
	Go       string // the Go toolchain
}

// Release, set at link time (-X github.com/kanca/kanca/version.Release=v1.4.0),
// names a build made without its VCS history, such as the container's.
var Release string

var get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	in := fromBuildInfo(bi)
	if Release != "" {
		in.Version = Release
	}
	return in
})

// Get returns this binary's build info.
func Get() Info { return get() }

func fromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Version: bi.Main.Version, Go: bi.GoVersion}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// Short is the version and the first 12 characters of the revision, as
// one token fit for a User-Agent: v1.2.3+0123456789ab, (devel)+…-dirty.
func (in Info) Short() string {
	s := in.Version
	if in.Revision != "" {
		r := in.Revision
		if len(r) > 12 {
			r = r[:12]
		}
		// A pseudo-version already ends in the revision.
		if !strings.HasSuffix(s, r) {
			s += "+" + r
		}
	}
	if in.Modified {
		s += "-dirty"
	}
	return s
}

// String is the line `kanca version` prints.
func (in Info) String() string {
	s := "kanca " + in.Version
	if in.Revision != "" {
		s += " revision " + in.Revision
		if in.Time != "" {
			s += " (" + in.Time + ")"
		}
		if in.Modified {
			s += " with local changes"
		}
	}
	if in.Go != "" {
		s += " " + in.Go
	}
	return s
}

// UserAgent is what kanca sends as User-Agent.
func UserAgent() string { return "kanca/" + Get().Short() }
