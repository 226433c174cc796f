package examples

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The compose file's nats profile is the README's Many PBXs topology: a
// three-node JetStream cluster, two listeners on it (one per PBX, each
// with its own database) and two delivery workers, none of it in the
// default stack.
func TestComposeNATSProfile(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Profiles    []string          `yaml:"profiles"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	data, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &compose))
	var nodes, listeners, workers int
	for name, s := range compose.Services {
		if !strings.HasPrefix(name, "nats") && !strings.HasPrefix(name, "kanca-listener") && !strings.HasPrefix(name, "kanca-deliver") {
			continue
		}
		assert.Equal(t, []string{"nats"}, s.Profiles, name)
		switch {
		case strings.HasPrefix(name, "nats"):
			nodes++
			assert.True(t, strings.HasPrefix(s.Image, "nats:"), "%s: the official image", name)
			assert.Contains(t, s.Command, "--jetstream", name)
			assert.Contains(t, s.Command, "--cluster_name", name)
			require.Len(t, s.Volumes, 1, "%s: its store on a volume of its own", name)
		case strings.HasPrefix(name, "kanca-listener"):
			listeners++
			assert.Equal(t, "/var/lib/kanca/kanca.db", s.Environment["KANCA_DB"], name)
			assert.Len(t, strings.Split(s.Environment["KANCA_NATS_URL"], ","), 3, name)
			require.Len(t, s.Volumes, 1, "%s: its own database", name)
		default:
			workers++
			assert.Equal(t, []string{"deliver"}, s.Command, name)
			assert.Len(t, strings.Split(s.Environment["KANCA_NATS_URL"], ","), 3, name)
		}
	}
	assert.Equal(t, 3, nodes)
	assert.Equal(t, 2, listeners)
	assert.Equal(t, 2, workers)
}
