// Package replay runs recorded PBX event streams through the call tracker
// and writes the webhook bodies kanca would POST. It is how an admin checks
// a dialplan mapping before going live, and how kanca's golden tests run.
package replay

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

// Decoder turns one recorded frame into tracker input; ok is false for a
// frame the tracker does not need.
type Decoder func(frame []byte) (in cdr.Input, ok bool, err error)

// Options set how frames are read and bodies written.
type Options struct {
	Decode  Decoder
	Tracker cdr.Config
	Format  formats.Options
	// Reorder, when set, wraps each file's reader before its lines are
	// read: a PBX whose recorded stream is not in event order (FreeSWITCH:
	// esl.Reorder) is put back in order there. Line numbers in errors then
	// count the reordered lines.
	Reorder func(io.Reader) io.Reader
	// Progress, when set, is told how many frames have been read so far.
	Progress func(frames int)
	// Mistaken, when set, is asked about a frame Decode refused: what it is
	// instead (another PBX's event), for the error to say; "" when unsure.
	Mistaken func(frame []byte) string
}

// Stats counts what a replay saw.
type Stats struct {
	Frames  int // lines read
	Inputs  int // frames the tracker was fed
	Events  int // webhook bodies written
	Skipped int // frames of types the tracker does not need
}

// maxFrame bounds one NDJSON line; real ARI frames are a few KiB.
const maxFrame = 4 << 20

// Files replays each file in turn (gzip-compressed when named .gz, "-" for
// stdin) through one tracker, so a call may span files, and writes one JSON
// body per line to w. An unreadable file or line stops it with an error
// naming the file and line.
func Files(names []string, stdin io.Reader, w io.Writer, o Options) (Stats, error) {
	r := newRun(w, o)
	for _, name := range names {
		if err := r.file(name, stdin); err != nil {
			return r.stats, err
		}
	}
	return r.stats, r.flush()
}

type run struct {
	o       Options
	tracker *cdr.Tracker
	w       *bufio.Writer
	stats   Stats
}

func newRun(w io.Writer, o Options) *run {
	return &run{o: o, tracker: cdr.NewTracker(o.Tracker), w: bufio.NewWriter(w)}
}

func (r *run) file(name string, stdin io.Reader) error {
	var src io.Reader
	if name == "-" {
		src = stdin
		name = "standard input"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer f.Close()
		src = f
		if strings.HasSuffix(name, ".gz") {
			gz, err := gzip.NewReader(f)
			if err != nil {
				return fmt.Errorf("replay %s: %w", name, err)
			}
			defer gz.Close()
			src = gz
		}
	}
	if r.o.Reorder != nil {
		src = r.o.Reorder(src)
	}
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 64<<10), maxFrame)
	line := 0
	for sc.Scan() {
		line++
		frame := sc.Bytes()
		if len(strings.TrimSpace(string(frame))) == 0 {
			continue
		}
		r.stats.Frames++
		if r.o.Progress != nil && r.stats.Frames%10000 == 0 {
			r.o.Progress(r.stats.Frames)
		}
		in, ok, err := r.o.Decode(frame)
		if err != nil {
			if r.o.Mistaken != nil {
				if hint := r.o.Mistaken(frame); hint != "" {
					return fmt.Errorf("replay %s:%d: %w (%s)", name, line, err, hint)
				}
			}
			return fmt.Errorf("replay %s:%d: %w", name, line, err)
		}
		if !ok {
			r.stats.Skipped++
			continue
		}
		r.stats.Inputs++
		if err := r.write(r.tracker.Handle(in)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay %s:%d: %w", name, line+1, err)
	}
	return nil
}

func (r *run) write(evs []cdr.Event) error {
	for _, ev := range evs {
		body, _, err := formats.Encode(formats.JSON, ev, r.o.Format)
		if err != nil {
			return fmt.Errorf("replay: encode %s of call %s: %w", ev.Type, ev.CallID, err)
		}
		r.w.Write(body)
		if err := r.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("replay: write: %w", err)
		}
		r.stats.Events++
	}
	return nil
}

func (r *run) flush() error {
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("replay: write: %w", err)
	}
	if r.o.Progress != nil {
		r.o.Progress(r.stats.Frames)
	}
	return nil
}

// Inputs decodes a recorded stream (gzipped when its name ends in .gz)
// into tracker inputs, in the order read; reorder, when set, wraps the
// reader as Options.Reorder does.
func Inputs(path string, decode Decoder, reorder func(io.Reader) io.Reader) ([]cdr.Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		r = gz
	}
	if reorder != nil {
		r = reorder(r)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 8<<20)
	var out []cdr.Input
	for line := 1; sc.Scan(); line++ {
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		in, ok, err := decode(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		if ok {
			out = append(out, in)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
