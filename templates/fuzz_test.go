package templates_test

import (
	"errors"
	"testing"

	"github.com/kanca/kanca/templates"
)

// FuzzRender renders arbitrary templates against arbitrary bodies: a
// template either fails with a *templates.Error or renders within the
// output limits; it never panics or hangs.
func FuzzRender(f *testing.F) {
	f.Add(`{"text": {{json (national .caller)}}}`, hangup)
	f.Add(`{{range .cdr.callflow}}{{.callee}}{{end}}`, hangup)
	f.Add(`{{define "x"}}{{answered .}}{{end}}{{include "x" .}}{{duration .talk_duration}}`, hangup)
	f.Add(`{{time "15:04" .timestamp}}{{kind .event_type}}`, `{"timestamp":"x","event_type":1}`)
	f.Add(`{{printf "%0999999d" 1}}`, `{}`)
	f.Add(`{{template "a"}}`, `[]`)
	f.Fuzz(func(t *testing.T, text, body string) {
		c, err := templates.Compile(templates.Set{Body: text, URL: text}, templates.Env{Lang: "tr"})
		if err != nil {
			var te *templates.Error
			if !errors.As(err, &te) {
				t.Fatalf("compile error is not a *templates.Error: %v", err)
			}
			return
		}
		out, err := c.Render([]byte(body))
		if err != nil {
			return
		}
		if len(out.Body) > templates.MaxBody || len(out.URL) > templates.MaxLine {
			t.Fatalf("output beyond the limits: %d, %d", len(out.Body), len(out.URL))
		}
	})
}
