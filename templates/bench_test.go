package templates_test

import (
	"testing"

	"github.com/kanca/kanca/templates"
)

// BenchmarkPreset measures what a preset hook adds to a send: parsing its
// templates (done on every send) and rendering them against a call_hangup.
// Data alone, the JSON decode every rendering starts with, is the baseline.
func BenchmarkPreset(b *testing.B) {
	p, err := templates.LookupPreset("slack", "tr", "")
	if err != nil {
		b.Fatal(err)
	}
	env := templates.Env{Location: istanbul, Lang: "tr"}
	body := []byte(hangup)
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := templates.Data(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			if _, err := templates.Compile(p.Set, env); err != nil {
				b.Fatal(err)
			}
		}
	})
	c, err := templates.Compile(p.Set, env)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("render", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Render(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
