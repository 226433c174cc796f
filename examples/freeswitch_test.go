package examples_test

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// TestFreeSWITCHEventSocket checks event_socket.conf.xml as kanca needs it,
// and that the compose stack's freeswitch profile wires kanca to it with
// the same password.
func TestFreeSWITCHEventSocket(t *testing.T) {
	var conf struct {
		Name   string `xml:"name,attr"`
		Params []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"settings>param"`
	}
	data, err := os.ReadFile(filepath.Join("freeswitch", "event_socket.conf.xml"))
	require.NoError(t, err)
	require.NoError(t, xml.Unmarshal(data, &conf))
	assert.Equal(t, "event_socket.conf", conf.Name)
	params := map[string]string{}
	for _, p := range conf.Params {
		params[p.Name] = p.Value
	}
	assert.Equal(t, "0.0.0.0", params["listen-ip"])
	assert.Equal(t, "8021", params["listen-port"])
	assert.NotEmpty(t, params["apply-inbound-acl"])
	password := params["password"]
	require.NotEmpty(t, password)
	assert.NotEqual(t, "ClueCon", password, "not FreeSWITCH's well-known default")

	var compose struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Profiles    []string          `yaml:"profiles"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   []string          `yaml:"depends_on"`
		} `yaml:"services"`
	}
	data, err = os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(data, &compose))
	fs, kanca := compose.Services["freeswitch"], compose.Services["kanca-freeswitch"]
	// Opt-in: with its own profile, and the many-PBXs one's second PBX.
	assert.ElementsMatch(t, []string{"freeswitch", "nats"}, fs.Profiles)
	assert.Equal(t, []string{"freeswitch"}, kanca.Profiles)
	assert.Contains(t, fs.Volumes, "./examples/freeswitch/event_socket.conf.xml:/etc/freeswitch/autoload_configs/event_socket.conf.xml:ro")
	assert.Equal(t, "${KANCA_ESL_PASSWORD:-"+password+"}", fs.Environment["KANCA_ESL_PASSWORD"])
	assert.Equal(t, ".", kanca.Build)
	assert.Equal(t, "freeswitch", kanca.Environment["KANCA_PBX"])
	assert.Equal(t, "freeswitch:"+params["listen-port"], kanca.Environment["KANCA_ESL_ADDR"])
	assert.Equal(t, "${KANCA_ESL_PASSWORD:-"+password+"}", kanca.Environment["KANCA_ESL_PASSWORD"])
	assert.Contains(t, kanca.DependsOn, "freeswitch")
}
