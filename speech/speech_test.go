package speech

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// needEngine fails under CI (which installs espeak-ng) and skips on a
// developer machine without it.
func needEngine(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("espeak-ng is not installed (Debian package espeak-ng): %v", err)
		}
		t.Skip("espeak-ng not installed")
	}
}

func TestRenderTurkishWithEspeak(t *testing.T) {
	needEngine(t)
	r, err := New(t.TempDir(), "")
	require.NoError(t, err)
	text := "Kritik alarm: disk dolu. Lütfen sunucuyu kontrol edin."
	id, d, err := r.Render(context.Background(), text, "tr")
	require.NoError(t, err)
	require.Equal(t, ID(text, "tr"), id)

	b, err := os.ReadFile(r.Path(id))
	require.NoError(t, err)
	require.Equal(t, "RIFF", string(b[:4]))
	w, err := ParseWAV(b)
	require.NoError(t, err)
	require.Equal(t, 8000, w.Rate)
	require.Equal(t, 1, w.Channels)
	require.Equal(t, d, w.Duration())
	// The recorded espeak-ng rendering of this sentence lasts 4.42 s.
	require.Greater(t, d, 2*time.Second)
	require.Less(t, d, 8*time.Second)
	require.Greater(t, w.RMS(), 300.0, "speech must not be silence")
	// 16-bit mono at 8 kHz: the size follows from the duration.
	require.Equal(t, 44+2*len(w.Samples), len(b))

	// Cached: the same text is not rendered again.
	info, err := os.Stat(r.Path(id))
	require.NoError(t, err)
	id2, d2, err := r.Render(context.Background(), text, "tr")
	require.NoError(t, err)
	require.Equal(t, id, id2)
	require.Equal(t, d, d2)
	info2, err := os.Stat(r.Path(id))
	require.NoError(t, err)
	require.Equal(t, info.ModTime(), info2.ModTime())

	// Another voice is another file.
	en, _, err := r.Render(context.Background(), "Disk full", "en")
	require.NoError(t, err)
	require.NotEqual(t, id, en)
}

func TestRenderReplaceableEngine(t *testing.T) {
	// An engine is any command writing a 16-bit PCM WAV to {out}: here
	// cp of a 16 kHz stereo file, converted by kanca to 8 kHz mono.
	dir := t.TempDir()
	src := WAV{Rate: 16000, Channels: 2, Samples: make([]int16, 2*16000)}
	for i := range src.Samples {
		src.Samples[i] = int16((i / 2 % 40) * 500)
	}
	in := filepath.Join(dir, "in.wav")
	require.NoError(t, os.WriteFile(in, src.Bytes(), 0o600))
	r, err := New(filepath.Join(dir, "cache"), "cp "+in+" {out}")
	require.NoError(t, err)
	id, d, err := r.Render(context.Background(), "hello", "en")
	require.NoError(t, err)
	require.Equal(t, time.Second, d)
	b, err := os.ReadFile(r.Path(id))
	require.NoError(t, err)
	w, err := ParseWAV(b)
	require.NoError(t, err)
	require.Equal(t, 8000, w.Rate)
	require.Equal(t, 1, w.Channels)
	require.Len(t, w.Samples, 8000)
}

func TestRenderErrors(t *testing.T) {
	_, err := New(t.TempDir(), "espeak-ng --stdout")
	require.ErrorContains(t, err, "{out}")
	r, err := New(t.TempDir(), "false {out}")
	require.NoError(t, err)
	_, _, err = r.Render(context.Background(), "x", "tr")
	require.ErrorContains(t, err, "false")
	_, _, err = r.Render(context.Background(), " ", "tr")
	require.ErrorContains(t, err, "no text")
	_, _, err = r.Render(context.Background(), "x", "../tr")
	require.ErrorContains(t, err, "bad voice")
	require.False(t, ValidID("../../etc/passwd"))
	require.True(t, ValidID(ID("a", "b")))
}
