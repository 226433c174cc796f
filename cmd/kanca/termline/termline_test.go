package termline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cmd/kanca/termline/ptytest"
)

func TestNoLineOffATerminal(t *testing.T) {
	assert.Nil(t, New(&bytes.Buffer{}), "a buffer")
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	defer f.Close()
	assert.Nil(t, New(f), "a file")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.Nil(t, New(w), "a pipe")

	var l *Line
	l.Show("%d of %d", 1, 2) // draws nothing, and does not panic
	l.Clear()
}

func TestShowRewritesAndClearBlanks(t *testing.T) {
	var b bytes.Buffer
	l := &Line{w: &b}
	l.Clear()
	assert.Empty(t, b.String(), "nothing drawn, nothing to clear")
	l.Show("requeued %d of %d", 500, 1200)
	l.Show("requeued %d of %d", 1000, 1200)
	l.Show("done")
	l.Clear()
	assert.Equal(t, "\rrequeued 500 of 1200\rrequeued 1000 of 1200\rdone                 \r    \r", b.String())
}

func TestLineOnATerminal(t *testing.T) {
	tty, screen := ptytest.Open(t)
	l := New(tty)
	require.NotNil(t, l)
	l.Show("%d of %d", 1, 2)
	l.Clear()
	assert.Equal(t, "\r1 of 2\r      \r", screen())
}
