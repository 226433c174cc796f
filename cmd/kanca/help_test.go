package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ownCommands lists kanca's own commands, root first. cobra's help and
// completion commands are left out: cobra writes their texts, which show
// their use in the Long text rather than as examples.
func ownCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		if sub.Hidden || (c == c.Root() && (sub.Name() == "help" || sub.Name() == "completion")) {
			continue
		}
		out = append(out, ownCommands(sub)...)
	}
	return out
}

// --help is where a newcomer starts: every command explains itself and
// shows how it is used, and a command added without doing so fails here.
func TestEveryCommandTeachesByExample(t *testing.T) {
	all := ownCommands(newRoot())
	require.Greater(t, len(all), 10, "the whole tree was walked")
	for _, c := range all {
		path := c.CommandPath()
		t.Run(path, func(t *testing.T) {
			long := strings.TrimSpace(c.Long)
			assert.NotEmpty(t, long, "%s has no Long text", path)
			assert.NotEqual(t, strings.TrimSpace(c.Short), long, "%s: the Long text only repeats the Short one", path)
			if c.Runnable() || c.HasSubCommands() {
				assert.NotEmpty(t, strings.TrimSpace(c.Example), "%s has no Example", path)
			}
			for _, line := range strings.Split(c.Example, "\n") {
				assert.True(t, line == "" || strings.HasPrefix(line, "  "), "%s: example lines are indented like cobra's: %q", path, line)
			}

			root := newRoot()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(append(strings.Fields(path)[1:], "--help"))
			require.NoError(t, root.Execute())
			assert.Contains(t, out.String(), long, "%s --help shows the Long text", path)
			assert.Contains(t, out.String(), "Examples:\n", "%s --help shows the examples", path)
		})
	}
}
