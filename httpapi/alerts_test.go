package httpapi

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kanca/kanca/hooks"
)

// The example alert rules ask only for metrics kanca exposes, by labels
// those metrics have, and for label values they take.
func TestExampleAlertRulesUseKancasMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "examples", "alerts.yml"))
	require.NoError(t, err)
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(data, &file))

	labels := map[string][]string{}
	descs := make(chan *prometheus.Desc, 64)
	newCollector(Config{}).Describe(descs)
	close(descs)
	desc := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	for d := range descs {
		m := desc.FindStringSubmatch(d.String())
		require.NotNil(t, m, d.String())
		labels[m[1]] = append(strings.Split(m[2], ","), "instance", "job")
	}
	values := map[string][]string{
		"outcome": {string(hooks.OutcomeDelivered), string(hooks.OutcomeFailed), string(hooks.OutcomeDead), string(hooks.OutcomeGone)},
		"state":   {string(hooks.Pending), string(hooks.Retrying), string(hooks.Delivered), string(hooks.Dead), string(hooks.Held)},
	}

	use := regexp.MustCompile(`(kanca_[a-z_]+)(\{([^}]*)\})?`)
	matcher := regexp.MustCompile(`([a-z_]+)(=~|!~|!=|=)"([^"]*)"`)
	rules := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			rules++
			uses := use.FindAllStringSubmatch(r.Expr, -1)
			require.NotEmpty(t, uses, r.Alert)
			for _, u := range uses {
				known, ok := labels[u[1]]
				require.True(t, ok, "%s: kanca exposes no %s", r.Alert, u[1])
				for _, m := range matcher.FindAllStringSubmatch(u[3], -1) {
					assert.Contains(t, known, m[1], "%s: %s has no label %s", r.Alert, u[1], m[1])
					for _, v := range strings.Split(m[3], "|") {
						if vs, ok := values[m[1]]; ok {
							assert.Contains(t, vs, v, "%s: %s=%q never is", r.Alert, m[1], v)
						}
					}
				}
			}
		}
	}
	assert.Equal(t, 5, rules)
}
