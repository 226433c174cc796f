package bench

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
)

// Scenario is one recorded trace and its share of the generated calls.
type Scenario struct {
	Name   string // directory under the traces root: <Name>/events.ndjson
	Kind   string // what it stands for in the mix
	Weight int    // relative share of clones
}

// DefaultMix is a busy PBX's day: mostly answered calls, a fair share of
// missed ones, and IVR, queue, ring group, outbound and fax traffic.
var DefaultMix = []Scenario{
	{"s01-answered-caller-hangs-up", "answered", 18},
	{"s02-answered-callee-hangs-up", "answered", 12},
	{"s14-answered-with-channelvars", "answered", 10},
	{"s03-no-answer-timeout", "missed", 8},
	{"s04-caller-abandons-ringing", "cancel", 8},
	{"s05-busy", "busy", 8},
	{"s06-ivr-menu-dtmf-to-extension", "ivr", 10},
	{"s07-queue-member-answers", "queue", 10},
	{"s12-ring-group", "ring group", 6},
	{"s08-outbound-answered", "outbound", 8},
	{"s09-inbound-fax", "fax", 2},
}

// token kinds: the parts of a frame that are unique per call.
const (
	tokLiteral = iota
	tokUUID    // bridge ids
	tokTime    // every timestamp
	tokChannel // channel unique ids, linkedids
	tokSuffix  // the unique suffix of a channel name (PJSIP/1000-0000001e)
	tokNumber  // the remote party's number
)

var tokenRE = regexp.MustCompile(`([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|` +
	`(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4})|` +
	`\b(\d{10}\.\d+)\b|` +
	`(-[0-9a-f]{8})\b|` +
	`\b(0[1-9]\d{9})\b`)

const arTime = "2006-01-02T15:04:05.000-0700"

type segment struct {
	lit  []byte
	kind int
	key  int       // index into the template's keys (not for tokTime)
	t    time.Time // tokTime: the recorded time
}

type tcall struct {
	linkedKey int // key of the channel id whose CallUUID is the call's uuid
}

// template is a recorded trace cut into literal text and per-call tokens.
type template struct {
	Scenario
	frames  [][]segment
	offsets []time.Duration // frame time since the trace's first frame
	t0      time.Time       // the first frame's time
	tmin    time.Time       // the earliest time in the trace (a channel's creation)
	keys    []int           // kind of each key
	entity  string
	calls   []tcall
	hangup  map[int]int // frame index -> call (index into calls) it ends
	events  map[string]int
	total   int // events the trace produces
	liveEnd int // frames before the first call_hangup: the calls are live
}

func loadTemplate(dir string, sc Scenario) (*template, error) {
	frames, err := aritest.LoadNDJSON(filepath.Join(dir, sc.Name, "events.ndjson"))
	if err != nil {
		return nil, err
	}
	return newTemplate(sc, frames)
}

func newTemplate(sc Scenario, frames [][]byte) (*template, error) {
	tp := &template{Scenario: sc, hangup: map[int]int{}, events: map[string]int{}}
	keyOf := map[string]int{}
	values := []string{}
	for i, fr := range frames {
		var head struct {
			Timestamp  string `json:"timestamp"`
			AsteriskID string `json:"asterisk_id"`
		}
		if err := json.Unmarshal(fr, &head); err != nil {
			return nil, fmt.Errorf("%s frame %d: %w", sc.Name, i, err)
		}
		ts, err := time.Parse(arTime, head.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("%s frame %d: %w", sc.Name, i, err)
		}
		if i == 0 {
			tp.t0, tp.entity = ts, head.AsteriskID
		}
		tp.offsets = append(tp.offsets, ts.Sub(tp.t0))
		var segs []segment
		last := 0
		for _, m := range tokenRE.FindAllSubmatchIndex(fr, -1) {
			kind := 0
			for g := 1; g <= 5; g++ {
				if m[2*g] >= 0 {
					kind = g
					break
				}
			}
			s, e := m[2*kind], m[2*kind+1]
			seg := segment{lit: fr[last:s], kind: kind}
			val := string(fr[s:e])
			if kind == tokTime {
				if seg.t, err = time.Parse(arTime, val); err != nil {
					return nil, fmt.Errorf("%s frame %d: %w", sc.Name, i, err)
				}
				if tp.tmin.IsZero() || seg.t.Before(tp.tmin) {
					tp.tmin = seg.t
				}
			} else {
				k, ok := keyOf[val]
				if !ok {
					k = len(values)
					keyOf[val] = k
					values = append(values, val)
					tp.keys = append(tp.keys, kind)
				}
				seg.key = k
			}
			segs = append(segs, seg)
			last = e
		}
		segs = append(segs, segment{lit: fr[last:]})
		tp.frames = append(tp.frames, segs)
	}

	// What the trace produces, from the real tracker, offline.
	tr := cdr.NewTracker(cdr.DefaultConfig())
	callIdx := map[string]int{}
	tp.liveEnd = len(frames)
	for i, fr := range frames {
		in, ok, err := ari.Decode(fr)
		if err != nil {
			return nil, fmt.Errorf("%s frame %d: %w", sc.Name, i, err)
		}
		if !ok {
			continue
		}
		for _, ev := range tr.Handle(in) {
			tp.events[ev.Number]++
			tp.total++
			if _, ok := callIdx[ev.CallID]; !ok {
				lk := -1
				for k, v := range values {
					if tp.keys[k] == tokChannel && cdr.CallUUID(in.Server, v) == ev.CallID {
						lk = k
						tp.entity = in.Server
						break
					}
				}
				if lk < 0 {
					return nil, fmt.Errorf("%s: no channel id gives call uuid %s", sc.Name, ev.CallID)
				}
				callIdx[ev.CallID] = len(tp.calls)
				tp.calls = append(tp.calls, tcall{linkedKey: lk})
			}
			if ev.Type == cdr.CallHangup {
				tp.hangup[i] = callIdx[ev.CallID]
				tp.liveEnd = min(tp.liveEnd, i)
			}
		}
	}
	if len(tp.hangup) != len(tp.calls) || len(tp.calls) == 0 {
		return nil, fmt.Errorf("%s: %d calls but %d hangups", sc.Name, len(tp.calls), len(tp.hangup))
	}
	return tp, nil
}

// generator hands out fresh identifiers, unique within a run.
type generator struct {
	channel, suffix, uuid, number uint64
}

func (g *generator) fresh(kind int) string {
	switch kind {
	case tokUUID:
		g.uuid++
		return fmt.Sprintf("%08x-0000-4000-8000-%012x", uint32(g.uuid>>32), g.uuid&0xffffffffffff)
	case tokChannel:
		g.channel++
		return "2000000000." + strconv.FormatUint(g.channel, 10)
	case tokSuffix:
		g.suffix++
		return fmt.Sprintf("-%08x", uint32(g.suffix))
	case tokNumber:
		g.number++
		return fmt.Sprintf("05%09d", g.number%1e9)
	}
	return ""
}

// clone is one generated copy of a template.
type clone struct {
	tp    *template
	vals  []string
	shift time.Duration // added to every recorded time
	next  int           // next frame to send
	at    time.Duration // when its first frame is due, from the run's start
	speed float64       // how much faster than recorded its frames are sent
	first int           // global number of its first call
}

func (g *generator) clone(tp *template, start time.Time) *clone {
	c := &clone{tp: tp, vals: make([]string, len(tp.keys)), shift: start.Sub(tp.tmin)}
	for k, kind := range tp.keys {
		c.vals[k] = g.fresh(kind)
	}
	return c
}

// uuid is the webhook uuid of the template's i-th call in this clone.
func (c *clone) uuid(i int) string {
	return cdr.CallUUID(c.tp.entity, c.vals[c.tp.calls[i].linkedKey])
}

// render writes frame i with this clone's identifiers and times.
func (c *clone) render(i int) []byte {
	segs := c.tp.frames[i]
	n := 0
	for _, s := range segs {
		n += len(s.lit) + 28
	}
	b := bytes.NewBuffer(make([]byte, 0, n))
	for _, s := range segs {
		b.Write(s.lit)
		switch s.kind {
		case tokLiteral:
		case tokTime:
			b.WriteString(s.t.Add(c.shift).UTC().Format(arTime))
		default:
			b.WriteString(c.vals[s.key])
		}
	}
	return b.Bytes()
}

// loadMix loads the templates of mix from dir (testdata/ari's layout).
func loadMix(dir string, mix []Scenario) ([]*template, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("traces: %w (run from the repository root or pass the traces directory)", err)
	}
	var out []*template
	for _, sc := range mix {
		if sc.Weight <= 0 {
			continue
		}
		tp, err := loadTemplate(dir, sc)
		if err != nil {
			return nil, err
		}
		out = append(out, tp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario with a weight in the mix")
	}
	return out, nil
}

// picker spreads the templates by weight, deterministically: clone i gets
// the template whose running share is furthest behind its weight.
type picker struct {
	tps    []*template
	credit []int
	sum    int
}

func newPicker(tps []*template) *picker {
	p := &picker{tps: tps, credit: make([]int, len(tps))}
	for _, tp := range tps {
		p.sum += tp.Weight
	}
	return p
}

func (p *picker) next() *template {
	best := 0
	for i, tp := range p.tps {
		p.credit[i] += tp.Weight
		if p.credit[i] > p.credit[best] {
			best = i
		}
	}
	p.credit[best] -= p.sum
	return p.tps[best]
}

// Script is n calls cloned from the recordings of mix in dir (testdata/ari's
// layout), one starting every 1/rate s, each at its recorded pace, as the
// frames Asterisk would send them in, interleaved: a load a test plays to a
// fake Asterisk at its own pace. Calls whose channel moves off the number
// it was dialled on (an IVR menu, a queue) come with their scenario.
func Script(dir string, mix []Scenario, n int, rate float64) ([][]byte, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("script: rate %g calls/s must be positive", rate)
	}
	tps, err := loadMix(dir, mix)
	if err != nil {
		return nil, err
	}
	var (
		gen generator
		h   cloneHeap
		out [][]byte
	)
	base := tps[0].t0
	emit := func() {
		c := h[0]
		out = append(out, c.render(c.next))
		c.next++
		if c.next < len(c.tp.frames) {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	for i, tp := range plan(tps, n) {
		at := time.Duration(float64(i) / rate * float64(time.Second))
		for h.Len() > 0 && h[0].due() < at {
			emit()
		}
		c := gen.clone(tp, base.Add(at))
		c.at, c.speed = at, 1
		heap.Push(&h, c)
	}
	for h.Len() > 0 {
		emit()
	}
	return out, nil
}
