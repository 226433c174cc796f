// Package templates renders a hook's request (its URL, body and extra
// headers) from a call event with Go's text/template, so that an event can
// land in a chat or notification app in the shape that app reads.
//
// A template sees the event exactly as the JSON body has it: a map of the
// body's fields, numbers as they are written (json.Number), times as the
// body writes them (timestamp in microseconds, the CDR's times in
// ISO-8601), absent optional fields absent. A field the event does not
// have is an error, except through the builtin index, so that a typo is
// caught when the hook is added, not when a call ends: {{.caler}} fails,
// {{index . "cdr_url"}} is empty when no CDR URL is configured.
//
// Besides text/template's builtins, templates have the functions in Funcs.
// None of them reads a file, the environment or the network. A template is
// at most MaxSource bytes, may not call itself (directly or through
// include), nests at most MaxRangeDepth ranges, cannot range over a
// number, and its output is cut off with an error at a limit; rendering
// that still takes longer than Timeout fails.
package templates

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Limits on what a template may be and make.
const (
	MaxSource     = 16 << 10 // bytes of one template's text
	MaxBody       = 64 << 10 // bytes a body template may render
	MaxLine       = 4 << 10  // bytes a URL or header template may render
	MaxRangeDepth = 2        // nested ranges, counting those of the templates called
	// Timeout bounds one rendering; the static limits keep a template far
	// below it, so it only guards against what they did not foresee.
	Timeout = 2 * time.Second
)

// Set holds the texts of a hook's templates; an empty one is not used.
type Set struct {
	URL     string            `json:"url,omitempty"`
	Body    string            `json:"body,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
}

// IsZero reports a set without any template.
func (s Set) IsZero() bool { return s.URL == "" && s.Body == "" && len(s.Headers) == 0 }

// Equal reports whether two sets have the same texts.
func (s Set) Equal(o Set) bool {
	return s.URL == o.URL && s.Body == o.Body && maps.Equal(s.Headers, o.Headers)
}

// Env is what a hook adds to its templates beside the event.
type Env struct {
	Location *time.Location    // for time; nil: UTC
	Lang     string            // "tr" or "en", for duration
	Params   map[string]string // for param
	URL      string            // the hook's URL, for url
}

// Output is a rendered request; a field whose template is empty is zero.
type Output struct {
	URL     string
	Body    []byte
	Headers [][2]string // in name order
}

// Compiled is a Set parsed for one Env.
type Compiled struct {
	url, body *template.Template
	headers   []named
}

type named struct {
	name string
	t    *template.Template
}

// Error is a template that does not parse or render: Template names which
// one ("url", "body" or "header X-Name"), and Err says where and why.
type Error struct {
	Template string
	Err      error
}

func (e *Error) Error() string { return fmt.Sprintf("%s template: %v", e.Template, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Compile parses every template of s with env's functions and checks the
// static limits.
func Compile(s Set, env Env) (*Compiled, error) {
	c := &Compiled{}
	var err error
	if c.url, err = compile("url", s.URL, env); err != nil {
		return nil, err
	}
	if c.body, err = compile("body", s.Body, env); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(s.Headers)) {
		what := "header " + name
		if err := checkHeaderName(name); err != nil {
			return nil, &Error{what, err}
		}
		t, err := compile(what, s.Headers[name], env)
		if err != nil {
			return nil, err
		}
		c.headers = append(c.headers, named{name, t})
	}
	return c, nil
}

func checkHeaderName(name string) error {
	if name == "" {
		return errors.New("empty header name")
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return fmt.Errorf("header name %q is not a valid HTTP token", name)
		}
	}
	return nil
}

func compile(what, text string, env Env) (*template.Template, error) {
	if text == "" {
		return nil, nil
	}
	if len(text) > MaxSource {
		return nil, &Error{what, fmt.Errorf("%d bytes, more than the %d a template may have", len(text), MaxSource)}
	}
	f := newFuncs(env)
	t, err := template.New(what).Option("missingkey=error").Funcs(f.funcMap()).Parse(text)
	if err != nil {
		return nil, &Error{what, err}
	}
	if err := checkBounds(t); err != nil {
		return nil, &Error{what, err}
	}
	f.root = t
	return t, nil
}

// Render renders every template of c against the JSON body of an event.
func (c *Compiled) Render(body []byte) (Output, error) {
	data, err := Data(body)
	if err != nil {
		return Output{}, err
	}
	var out Output
	if c.url != nil {
		b, err := run(c.url, data, MaxLine)
		if err != nil {
			return Output{}, err
		}
		out.URL = string(b)
	}
	if c.body != nil {
		if out.Body, err = run(c.body, data, MaxBody); err != nil {
			return Output{}, err
		}
	}
	for _, h := range c.headers {
		b, err := run(h.t, data, MaxLine)
		if err != nil {
			return Output{}, err
		}
		if bytes.ContainsAny(b, "\r\n\x00") {
			return Output{}, &Error{h.t.Name(), errors.New("rendered a line break or NUL, which a header cannot carry")}
		}
		out.Headers = append(out.Headers, [2]string{h.name, string(b)})
	}
	return out, nil
}

// HasURL, HasBody and HasHeaders report which templates c has.
func (c *Compiled) HasURL() bool     { return c.url != nil }
func (c *Compiled) HasBody() bool    { return c.body != nil }
func (c *Compiled) HasHeaders() bool { return len(c.headers) > 0 }

// Data decodes an event's JSON body into what a template sees.
func Data(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var data map[string]any
	if err := dec.Decode(&data); err != nil {
		return nil, fmt.Errorf("templates: event body is not a JSON object: %w", err)
	}
	return data, nil
}

// errTooLong is returned by the capped writer; execution stops at once.
var errTooLong = errors.New("output too long")

type capped struct {
	b   bytes.Buffer
	max int
}

func (w *capped) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.max {
		return 0, fmt.Errorf("%w: more than %d bytes", errTooLong, w.max)
	}
	return w.b.Write(p)
}

func run(t *template.Template, data any, max int) ([]byte, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			// A function's panic is the template's error, not kanca's crash.
			if p := recover(); p != nil {
				done <- result{nil, fmt.Errorf("panic: %v", p)}
			}
		}()
		w := &capped{max: max}
		err := t.Execute(w, data)
		done <- result{w.b.Bytes(), err}
	}()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, &Error{t.Name(), r.err}
		}
		return r.b, nil
	case <-timer.C:
		return nil, &Error{t.Name(), fmt.Errorf("rendering took more than %s", Timeout)}
	}
}

// checkBounds refuses what could make a rendering run long: ranging over a
// number, templates calling themselves, ranges nested too deep.
func checkBounds(root *template.Template) error {
	trees := map[string]*parse.Tree{}
	for _, t := range root.Templates() {
		if t.Tree != nil {
			trees[t.Name()] = t.Tree
		}
	}
	const (
		visiting = -1
	)
	depth := map[string]int{}
	var cur *parse.Tree
	pos := func(n parse.Node) string {
		loc, _ := cur.ErrorContext(n)
		return loc
	}
	var treeDepth func(name string) (int, error)
	var walk func(n parse.Node) (int, error)
	call := func(name string) (int, error) {
		if _, ok := trees[name]; !ok {
			return 0, nil // text/template reports it when run
		}
		return treeDepth(name)
	}
	walk = func(n parse.Node) (int, error) {
		if n == nil {
			return 0, nil
		}
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return 0, nil
			}
			return deepest(walk, n.Nodes)
		case *parse.ActionNode:
			return walk(n.Pipe)
		case *parse.PipeNode:
			if n == nil {
				return 0, nil
			}
			return deepest(walk, n.Cmds)
		case *parse.CommandNode:
			m := 0
			if len(n.Args) > 0 {
				if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "include" {
					if len(n.Args) < 2 {
						return 0, fmt.Errorf("%s: include needs a template name", pos(n))
					}
					s, ok := n.Args[1].(*parse.StringNode)
					if !ok {
						return 0, fmt.Errorf("%s: include takes a quoted template name", pos(n))
					}
					d, err := call(s.Text)
					if err != nil {
						return 0, err
					}
					m = d
				}
			}
			d, err := deepest(walk, n.Args)
			return max(m, d), err
		case *parse.IfNode:
			return walkBranch(walk, n.Pipe, n.List, n.ElseList)
		case *parse.WithNode:
			return walkBranch(walk, n.Pipe, n.List, n.ElseList)
		case *parse.RangeNode:
			for _, c := range n.Pipe.Cmds {
				if len(c.Args) == 1 {
					if _, ok := c.Args[0].(*parse.NumberNode); ok {
						return 0, fmt.Errorf("%s: range over a number is not allowed", pos(n))
					}
				}
			}
			d, err := walkBranch(walk, n.Pipe, n.List, n.ElseList)
			if err != nil {
				return 0, err
			}
			if d+1 > MaxRangeDepth {
				return 0, fmt.Errorf("%s: ranges nested more than %d deep", pos(n), MaxRangeDepth)
			}
			return d + 1, nil
		case *parse.TemplateNode:
			d, err := call(n.Name)
			if err != nil {
				return 0, err
			}
			p, err := walk(n.Pipe)
			return max(d, p), err
		}
		return 0, nil
	}
	treeDepth = func(name string) (int, error) {
		switch d, ok := depth[name]; {
		case ok && d == visiting:
			return 0, fmt.Errorf("template %q calls itself", name)
		case ok:
			return d, nil
		}
		depth[name] = visiting
		prev := cur
		cur = trees[name]
		d, err := walk(cur.Root)
		cur = prev
		if err != nil {
			return 0, err
		}
		depth[name] = d
		return d, nil
	}
	for _, name := range slices.Sorted(maps.Keys(trees)) {
		if _, err := treeDepth(name); err != nil {
			return err
		}
	}
	return nil
}

func walkBranch(walk func(parse.Node) (int, error), pipe *parse.PipeNode, list, elseList *parse.ListNode) (int, error) {
	var ns []parse.Node
	if pipe != nil {
		ns = append(ns, pipe)
	}
	if list != nil {
		ns = append(ns, list)
	}
	if elseList != nil {
		ns = append(ns, elseList)
	}
	return deepest(walk, ns)
}

// deepest is the deepest range nesting among nodes.
func deepest[N parse.Node](walk func(parse.Node) (int, error), nodes []N) (int, error) {
	m := 0
	for _, n := range nodes {
		d, err := walk(n)
		if err != nil {
			return 0, err
		}
		m = max(m, d)
	}
	return m, nil
}
