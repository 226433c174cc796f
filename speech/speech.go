// Package speech turns text into audio a PBX can play: 8 kHz, 16-bit, mono
// PCM WAV, the format both Asterisk (sound:http://... through
// res_http_media_cache) and FreeSWITCH (http_cache) take without
// transcoding surprises. The engine is a command (espeak-ng by default);
// its output is converted here, so any engine that writes a PCM WAV works.
// Files are cached by a hash of the text and the voice: an alert repeated
// a hundred times is rendered once.
package speech

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultCommand runs espeak-ng (Debian package espeak-ng): the text comes
// on stdin, {voice} and {out} are replaced by the voice and the file to
// write.
const DefaultCommand = "espeak-ng -v {voice} -w {out} --stdin"

// DefaultVoice is the voice used when a request names none.
const DefaultVoice = "tr"

// Rate is the sample rate of every file Renderer writes.
const Rate = 8000

// MaxText bounds the text of one message (Alertalk reads at most 500
// characters).
const MaxText = 500

// Renderer renders and caches speech. Safe for concurrent use.
type Renderer struct {
	dir     string
	command []string
	timeout time.Duration

	mu      sync.Mutex
	pending map[string]*sync.Mutex // one render per id at a time
}

// New returns a renderer writing into dir (created if missing). command is
// split on spaces; "" means DefaultCommand.
func New(dir, command string) (*Renderer, error) {
	if command == "" {
		command = DefaultCommand
	}
	args := strings.Fields(command)
	if !strings.Contains(command, "{out}") {
		return nil, fmt.Errorf("speech command %q: it must write to {out}", command)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("speech cache: %w", err)
	}
	return &Renderer{dir: dir, command: args, timeout: 30 * time.Second, pending: map[string]*sync.Mutex{}}, nil
}

// ID names the audio of text in voice: the same text and voice always
// give the same id.
func ID(text, voice string) string {
	h := sha256.Sum256([]byte(voice + "\x00" + text))
	return hex.EncodeToString(h[:12])
}

// Path is where the audio with id lives (it may not exist yet).
func (r *Renderer) Path(id string) string { return filepath.Join(r.dir, id+".wav") }

// ValidID reports whether id can name a cached file (no path tricks).
func ValidID(id string) bool {
	if len(id) != 24 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// Render makes sure the audio of text in voice is cached and returns its
// id and duration.
func (r *Renderer) Render(ctx context.Context, text, voice string) (string, time.Duration, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", 0, errors.New("speech: no text")
	}
	if voice == "" {
		voice = DefaultVoice
	}
	if strings.ContainsAny(voice, " \t\n/") {
		return "", 0, fmt.Errorf("speech: bad voice %q", voice)
	}
	id := ID(text, voice)
	r.mu.Lock()
	m := r.pending[id]
	if m == nil {
		m = &sync.Mutex{}
		r.pending[id] = m
	}
	r.mu.Unlock()
	m.Lock()
	defer m.Unlock()
	if b, err := os.ReadFile(r.Path(id)); err == nil {
		if w, err := ParseWAV(b); err == nil {
			return id, w.Duration(), nil
		}
	}
	raw, err := r.run(ctx, text, voice)
	if err != nil {
		return "", 0, err
	}
	w, err := ParseWAV(raw)
	if err != nil {
		return "", 0, fmt.Errorf("speech: engine output: %w", err)
	}
	w = w.Convert(Rate)
	tmp := r.Path(id) + ".tmp"
	if err := os.WriteFile(tmp, w.Bytes(), 0o640); err != nil {
		return "", 0, fmt.Errorf("speech: %w", err)
	}
	if err := os.Rename(tmp, r.Path(id)); err != nil {
		return "", 0, fmt.Errorf("speech: %w", err)
	}
	return id, w.Duration(), nil
}

func (r *Renderer) run(ctx context.Context, text, voice string) ([]byte, error) {
	out, err := os.CreateTemp(r.dir, "render-*.wav")
	if err != nil {
		return nil, fmt.Errorf("speech: %w", err)
	}
	out.Close()
	defer os.Remove(out.Name())
	args := make([]string, len(r.command))
	for i, a := range r.command {
		a = strings.ReplaceAll(a, "{voice}", voice)
		args[i] = strings.ReplaceAll(a, "{out}", out.Name())
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("speech: %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return os.ReadFile(out.Name())
}
