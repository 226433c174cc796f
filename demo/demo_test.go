package demo

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The demo plays every bundled call through the real pipeline and ends by
// itself once every webhook has arrived, in both formats.
func TestDemoDeliversEveryWebhook(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(context.Background(), Options{DB: filepath.Join(t.TempDir(), "demo.db"), Location: time.UTC, Timeout: time.Minute}, &out)
	require.NoError(t, err, out.String())
	assert.Equal(t, len(Scenarios()), sum.Scenarios)
	assert.Equal(t, 16, sum.Calls, "12 scenarios, s11 has five calls")
	assert.Equal(t, sum.Expected, sum.Delivered)
	assert.Zero(t, sum.Duplicates)
	assert.Equal(t, sum.ByFormat["json"], sum.ByFormat["form"], "every event goes to a JSON and a form hook")
	// One call_init and one call_hangup per call, for each of the two hooks.
	assert.Equal(t, 2*16, sum.ByEvent["call_init"])
	assert.Equal(t, 2*16, sum.ByEvent["call_hangup"])
	for _, typ := range []string{"call_init_extension", "call_init_group", "call_init_menu", "fax_init", "missing_call"} {
		assert.Positive(t, sum.ByEvent[typ], typ)
	}
	assert.Equal(t, sum.Delivered, strings.Count(out.String(), "\njson ")+strings.Count(out.String(), "\nform "), "one printed line per webhook")
	assert.Contains(t, out.String(), "missing_call")
}
