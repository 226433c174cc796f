package formats

import (
	"testing"

	"github.com/kanca/kanca/cdr"
)

// BenchmarkEncode measures a call_hangup with a 3-step callflow, the largest
// body kanca sends routinely.
func BenchmarkEncode(b *testing.B) {
	ev := trickyEvent(cdr.CallHangup)
	o := fullOptions(istanbul(b))
	for _, f := range []Format{JSON, Form} {
		b.Run(string(f), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Encode(f, ev, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
