package version

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFromBuildInfo(t *testing.T) {
	for _, c := range []struct {
		name        string
		bi          debug.BuildInfo
		short, line string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}}},
			"v1.4.0+0123456789ab", "kanca v1.4.0 revision 0123456789abcdef0123 (2026-12-01T10:00:00Z) go1.26.8"},
		{"pseudo-version", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201100000-0123456789ab"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}}},
			"v0.0.0-20261201100000-0123456789ab", "kanca v0.0.0-20261201100000-0123456789ab revision 0123456789abcdef0123"},
		{"local checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel)+abc-dirty", "kanca (devel) revision abc with local changes"},
		{"no vcs", debug.BuildInfo{}, "(devel)", "kanca (devel)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := fromBuildInfo(&c.bi)
			assert.Equal(t, c.short, in.Short())
			assert.Equal(t, c.line, in.String())
		})
	}
}

func TestUserAgentNamesThisBuild(t *testing.T) {
	assert.Equal(t, "kanca/"+Get().Short(), UserAgent())
	assert.NotEmpty(t, Get().Version)
}
