package trackerflags

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// The dialplan file's country_code holds unless the flag is given.
func TestCountryCodeFromFileUnlessFlagGiven(t *testing.T) {
	file := filepath.Join(t.TempDir(), "dialplan.yaml")
	require.NoError(t, os.WriteFile(file, []byte("country_code: 49\n"), 0o600))
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--dialplan", file}, 49},
		{[]string{"--dialplan", file, "--country-code", "44"}, 44},
		{nil, 90},
		{[]string{"--country-code", "1"}, 1},
	} {
		var f Flags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f.Register(fs)
		require.NoError(t, fs.Parse(c.args))
		cfg, err := f.Tracker()
		require.NoError(t, err)
		require.Equal(t, c.want, cfg.CountryCode, "%v", c.args)
	}
}
