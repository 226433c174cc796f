package speech

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// WAV is 16-bit PCM audio, mono after Convert.
type WAV struct {
	Rate     int
	Channels int
	Samples  []int16 // interleaved when Channels > 1
}

// ParseWAV reads a RIFF WAVE file of 16-bit PCM. A data chunk whose size
// says "unknown" (0 or past the end, as engines writing to a pipe leave
// it) runs to the end of the file.
func ParseWAV(b []byte) (WAV, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return WAV{}, errors.New("not a RIFF WAVE file")
	}
	var w WAV
	bits := 0
	for p := 12; p+8 <= len(b); {
		id := string(b[p : p+4])
		n := int(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		p += 8
		if n < 0 || p+n > len(b) || (id == "data" && n == 0) {
			n = len(b) - p
		}
		switch id {
		case "fmt ":
			if n < 16 {
				return WAV{}, errors.New("short fmt chunk")
			}
			if f := binary.LittleEndian.Uint16(b[p:]); f != 1 && f != 0xFFFE {
				return WAV{}, fmt.Errorf("WAV format %d, want PCM", f)
			}
			w.Channels = int(binary.LittleEndian.Uint16(b[p+2:]))
			w.Rate = int(binary.LittleEndian.Uint32(b[p+4:]))
			bits = int(binary.LittleEndian.Uint16(b[p+14:]))
		case "data":
			if bits != 16 || w.Channels < 1 || w.Rate <= 0 {
				return WAV{}, fmt.Errorf("want 16-bit PCM (bits %d, channels %d, rate %d)", bits, w.Channels, w.Rate)
			}
			w.Samples = make([]int16, n/2)
			for i := range w.Samples {
				w.Samples[i] = int16(binary.LittleEndian.Uint16(b[p+2*i:]))
			}
			return w, nil
		}
		p += n + n%2
	}
	return WAV{}, errors.New("no data chunk")
}

// Duration is how long the audio plays.
func (w WAV) Duration() time.Duration {
	if w.Rate == 0 || w.Channels == 0 {
		return 0
	}
	return time.Duration(len(w.Samples)/w.Channels) * time.Second / time.Duration(w.Rate)
}

// Convert mixes to mono and resamples to rate. Going down it averages the
// source samples each output sample covers (a box filter: enough against
// aliasing for speech bound for a phone line), going up it interpolates.
func (w WAV) Convert(rate int) WAV {
	mono := w.Samples
	if w.Channels > 1 {
		mono = make([]int16, len(w.Samples)/w.Channels)
		for i := range mono {
			s := 0
			for c := 0; c < w.Channels; c++ {
				s += int(w.Samples[i*w.Channels+c])
			}
			mono[i] = int16(s / w.Channels)
		}
	}
	if rate == w.Rate || len(mono) == 0 {
		return WAV{Rate: w.Rate, Channels: 1, Samples: mono}
	}
	ratio := float64(w.Rate) / float64(rate)
	n := int(float64(len(mono)) / ratio)
	out := make([]int16, n)
	for i := range out {
		start := float64(i) * ratio
		if ratio <= 1 {
			j := int(start)
			f := start - float64(j)
			next := mono[min(j+1, len(mono)-1)]
			out[i] = int16(math.Round(float64(mono[j])*(1-f) + float64(next)*f))
			continue
		}
		lo, hi := int(start), min(int(start+ratio), len(mono))
		if hi <= lo {
			hi = lo + 1
		}
		s := 0
		for _, v := range mono[lo:hi] {
			s += int(v)
		}
		out[i] = int16(s / (hi - lo))
	}
	return WAV{Rate: rate, Channels: 1, Samples: out}
}

// RMS is the root mean square of the samples, 0 for silence.
func (w WAV) RMS() float64 {
	if len(w.Samples) == 0 {
		return 0
	}
	var s float64
	for _, v := range w.Samples {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(w.Samples)))
}

// Bytes is the canonical 44-byte-header WAV file of w.
func (w WAV) Bytes() []byte {
	data := len(w.Samples) * 2
	b := make([]byte, 44+data)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(w.Channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(w.Rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(w.Rate*w.Channels*2))
	binary.LittleEndian.PutUint16(b[32:], uint16(w.Channels*2))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for i, v := range w.Samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	return b
}
