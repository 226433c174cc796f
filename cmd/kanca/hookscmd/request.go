package hookscmd

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/table"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/templates"
)

// requestFlags are the flags of a hook's request: method, preset,
// templates, time zone and params.
type requestFlags struct {
	method, preset, lang, tz  string
	urlTemplate, bodyTemplate string
	bodyTemplateFile          string
	headerTemplates, params   []string
}

func (f *requestFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.method, "method", "POST", "HTTP method: POST, GET (the event in the query string) or PUT")
	fl.StringVar(&f.preset, "preset", "", "send what a chat or notification app reads: "+strings.Join(templates.PresetNames, ", "))
	fl.StringVar(&f.lang, "lang", "", "the preset's language: "+strings.Join(templates.Langs, " or ")+" (default tr)")
	fl.StringVar(&f.tz, "tz", "", "time zone of the times templates print, e.g. Europe/Istanbul (default: this machine's)")
	fl.StringVar(&f.urlTemplate, "url-template", "", "Go template of the URL (e.g. '{{url}}?caller={{urlquery .caller}}')")
	fl.StringVar(&f.bodyTemplate, "body-template", "", "Go template of the body")
	fl.StringVar(&f.bodyTemplateFile, "body-template-file", "", "read the body template from this file")
	fl.StringArrayVar(&f.headerTemplates, "header-template", nil, "NAME=TEMPLATE: an extra header made by a template (repeatable)")
	fl.StringArrayVar(&f.params, "param", nil, "NAME=VALUE: a value templates read with param, e.g. chat_id (repeatable)")
	cmd.MarkFlagsMutuallyExclusive("body-template", "body-template-file")
}

func pairs(flag string, in []string) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(in))
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want NAME=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func (f *requestFlags) body() (string, error) {
	if f.bodyTemplateFile == "" {
		return f.bodyTemplate, nil
	}
	b, err := os.ReadFile(f.bodyTemplateFile)
	if err != nil {
		return "", fmt.Errorf("--body-template-file: %w", err)
	}
	return string(b), nil
}

// apply sets a new hook's request from the flags.
func (f *requestFlags) apply(h *hooks.Hook) error {
	body, err := f.body()
	if err != nil {
		return err
	}
	headers, err := pairs("header-template", f.headerTemplates)
	if err != nil {
		return err
	}
	if h.Params, err = pairs("param", f.params); err != nil {
		return err
	}
	h.Method, h.Preset, h.Lang, h.TZ = strings.ToUpper(f.method), f.preset, f.lang, f.tz
	h.Templates = templates.Set{URL: f.urlTemplate, Body: body, Headers: headers}
	return nil
}

// update puts the request flags given into u; templates change one by one
// from cur's.
func (f *requestFlags) update(u *hooks.HookUpdate, cur hooks.Hook, changed func(string) bool) error {
	str := func(name, v string) *string {
		if changed(name) {
			return &v
		}
		return nil
	}
	u.Method, u.Preset, u.Lang, u.TZ = str("method", strings.ToUpper(f.method)), str("preset", f.preset), str("lang", f.lang), str("tz", f.tz)
	var err error
	if u.Params, err = pairs("param", f.params); err != nil {
		return err
	}
	if !changed("url-template") && !changed("body-template") && !changed("body-template-file") && !changed("header-template") {
		return nil
	}
	set := cur.Templates
	set.Headers = nil
	for k, v := range cur.Templates.Headers {
		if set.Headers == nil {
			set.Headers = map[string]string{}
		}
		set.Headers[k] = v
	}
	if changed("url-template") {
		set.URL = f.urlTemplate
	}
	if changed("body-template") || changed("body-template-file") {
		if set.Body, err = f.body(); err != nil {
			return err
		}
	}
	headers, err := pairs("header-template", f.headerTemplates)
	if err != nil {
		return err
	}
	for k, v := range headers {
		if set.Headers == nil {
			set.Headers = map[string]string{}
		}
		if v == "" {
			delete(set.Headers, k)
		} else {
			set.Headers[k] = v
		}
	}
	u.Templates = &set
	return nil
}

func paramList(h hooks.Hook) []string {
	m := h.Masked()
	var out []string
	for k, v := range m.Params {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// templates prints the templates a hook's requests are made with, its
// preset's expanded; nothing in JSON, where the hook has its own.
func (p printer) templates(h hooks.Hook) error {
	if p.JSON {
		return nil
	}
	set, err := h.RequestTemplates()
	if err != nil || set.IsZero() {
		return err
	}
	from := "its own"
	if h.Preset != "" {
		from = "preset " + h.Preset + " (" + h.Lang + ")"
	}
	fmt.Fprintf(p.W, "\ntemplates (%s):\n", from)
	p.set(set)
	return nil
}

func (p printer) set(set templates.Set) {
	if set.URL != "" {
		fmt.Fprintf(p.W, "--- url\n%s\n", set.URL)
	}
	if set.Body != "" {
		fmt.Fprintf(p.W, "--- body\n%s\n", set.Body)
	}
	for _, k := range slices.Sorted(maps.Keys(set.Headers)) {
		fmt.Fprintf(p.W, "--- header %s\n%s\n", k, set.Headers[k])
	}
}

// preset prints what a preset expands to.
func (p printer) preset(pr templates.Preset, lang string) error {
	if p.JSON {
		return table.PrintJSON(p.W, pr.Set)
	}
	events := "all"
	if pr.Events != nil {
		events = strings.Join(pr.Events, ", ")
	}
	fs := []table.Field{
		table.F("preset", pr.Name),
		table.F("language", lang),
		table.F("method", pr.Method),
		table.F("url", pr.URL),
		table.F("events by default", events),
	}
	if len(pr.Params) > 0 {
		fs = append(fs, table.F("params", strings.Join(pr.Params, ", ")))
	}
	if err := table.Fields(p.W, fs); err != nil {
		return err
	}
	fmt.Fprintln(p.W)
	p.set(pr.Set)
	return nil
}
