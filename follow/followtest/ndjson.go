package followtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
)

// maxLine bounds one recorded frame; Asterisk's largest events (a bridge
// with many channels, a snapshot with many channelvars) stay far below it.
const maxLine = 16 << 20

// LoadNDJSON reads a recording of raw PBX events (ARI frames, event socket
// "event json" objects), one JSON object a line, plain or gzip-compressed
// (detected by content, not by name).
func LoadNDJSON(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	frames, err := ReadNDJSON(f)
	if err != nil {
		return nil, fmt.Errorf("recording %s: %w", path, err)
	}
	return frames, nil
}

// ReadNDJSON reads raw PBX events, one a line, from plain or
// gzip-compressed NDJSON. Blank lines are skipped; each frame is its own copy.
func ReadNDJSON(r io.Reader) ([][]byte, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var frames [][]byte
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		frames = append(frames, bytes.Clone(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("after frame %d: %w", len(frames), err)
	}
	return frames, nil
}
