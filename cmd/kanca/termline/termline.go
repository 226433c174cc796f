// Package termline draws a progress line that rewrites itself, for
// commands whose work takes long enough to wonder about. It draws only on
// a terminal: in a log or a pipe, a line rewritten with carriage returns
// is noise, so there the commands print their summary alone.
package termline

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Line is a progress line on a terminal. A nil *Line draws nothing, so
// callers need not ask whether there is a terminal.
type Line struct {
	w     io.Writer
	width int // of the text drawn last, to blank what a shorter one leaves
}

// New returns a Line drawing on w, or nil when w is not a terminal.
func New(w io.Writer) *Line {
	if !IsTerminal(w) {
		return nil
	}
	return &Line{w: w}
}

// IsTerminal reports whether w is a character device, as a terminal is.
// Checking the file mode needs nothing beyond the standard library; it
// also takes /dev/null for a terminal, where drawing costs nothing.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Show replaces the line with the formatted text.
func (l *Line) Show(format string, args ...any) {
	if l == nil {
		return
	}
	text := fmt.Sprintf(format, args...)
	pad := max(l.width-len(text), 0)
	fmt.Fprintf(l.w, "\r%s%s", text, strings.Repeat(" ", pad))
	l.width = len(text)
}

// Clear blanks the line and puts the cursor at its start, so that what is
// printed next, on this stream or another on the same terminal, starts on
// a clean line.
func (l *Line) Clear() {
	if l == nil || l.width == 0 {
		return
	}
	fmt.Fprintf(l.w, "\r%s\r", strings.Repeat(" ", l.width))
	l.width = 0
}
