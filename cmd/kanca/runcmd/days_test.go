package runcmd

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDaysFlag(t *testing.T) {
	thirty := days(30 * 24 * time.Hour)
	assert.Equal(t, "30d", thirty.String(), "as --help shows the default")

	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30d", 30 * 24 * time.Hour, ""},
		{"0d", 0, ""},
		{"720h", 720 * time.Hour, ""},
		{"0", 0, ""},
		{"90m", 90 * time.Minute, ""},
		{"1.5d", 0, `"1.5d": want whole days (30d) or a duration (720h)`},
		{"-1d", 0, `"-1d": want whole days (30d) or a duration (720h)`},
		{"a month", 0, `"a month": want a duration (720h) or whole days (30d)`},
	} {
		var d days
		err := d.Set(tc.in)
		if tc.err != "" {
			require.EqualError(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, time.Duration(d), tc.in)
		var again days
		require.NoError(t, again.Set(d.String()), "%s reads back", d.String())
		assert.Equal(t, d, again)
	}
}
