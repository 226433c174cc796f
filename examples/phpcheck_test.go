package examples_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Without php the PHP examples' tests skip, which go test shows only with
// -v: .ci/php-check (run by make test) says so, and under CI fails.
func TestPHPCheckSaysWhatIsMissing(t *testing.T) {
	bash, err := exec.LookPath("bash")
	require.NoError(t, err)
	script, err := filepath.Abs(filepath.Join("..", ".ci", "php-check"))
	require.NoError(t, err)
	noPHP := t.TempDir() // a PATH with no php on it
	for _, c := range []struct {
		ci   string
		code int
	}{{"", 0}, {"true", 1}} {
		cmd := exec.Command(bash, script)
		cmd.Env = []string{"PATH=" + noPHP, "CI=" + c.ci}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, c.code, code, "CI=%q: %s", c.ci, out)
		assert.Contains(t, string(out), "php-check: missing php (php-cli): the PHP examples' tests will not run")
	}
	// Here, where the tests run, nothing is missing (CI installs it).
	RequirePHP(t, "pdo_sqlite", "curl")
	out, err := exec.Command(bash, script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Empty(t, string(out))
}
