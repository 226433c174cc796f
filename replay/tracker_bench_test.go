package replay_test

import (
	"bufio"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
)

// BenchmarkTracker feeds the 600 recorded calls of testdata/ari-load,
// decoded once beforehand, through a new tracker per iteration: the cost
// of the tracker alone, per input.
func BenchmarkTracker(b *testing.B) {
	f, err := os.Open(filepath.Join("..", "testdata", "ari-load", "run1_10cps", "events.ndjson.gz"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(gz)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var inputs []cdr.Input
	for sc.Scan() {
		in, ok, err := ari.Decode(sc.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		if ok {
			inputs = append(inputs, in)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for range b.N {
		tr := cdr.NewTracker(cdr.DefaultConfig())
		for _, in := range inputs {
			events += len(tr.Handle(in))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(inputs)), "ns/input")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}
