package autodial_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/autodial"
)

func TestTrunks(t *testing.T) {
	for _, tc := range []struct{ in, prefix, template, name string }{
		{"PJSIP/{number}@carrier", "", "PJSIP/{number}@carrier", "carrier"},
		{"90533=PJSIP/{number}@second", "90533", "PJSIP/{number}@second", "second"},
		{"SIP/carrier/{number}", "", "SIP/carrier/{number}", "carrier"},
		{"sofia/gateway/carrier/{number}", "", "sofia/gateway/carrier/{number}", "carrier"},
		{"{absolute_codec_string=PCMA}sofia/gateway/gw2/{number}", "", "{absolute_codec_string=PCMA}sofia/gateway/gw2/{number}", "gw2"},
		{"sofia/external/{number}@10.0.0.1", "", "sofia/external/{number}@10.0.0.1", "10.0.0.1"},
		{"Local/{number}@from-internal/n", "", "Local/{number}@from-internal/n", "from-internal/n"},
	} {
		tr, err := autodial.ParseTrunk(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.prefix, tr.Prefix, tc.in)
		assert.Equal(t, tc.template, tr.Template, tc.in)
		assert.Equal(t, tc.name, tr.Name(), tc.in)
	}
	_, err := autodial.ParseTrunk("90533=PJSIP/carrier")
	assert.ErrorContains(t, err, "{number}")

	def := autodial.Trunk{Template: "PJSIP/{number}@carrier"}
	second := autodial.Trunk{Prefix: "90533", Template: "PJSIP/{number}@second"}
	assert.NoError(t, autodial.CheckTrunks([]autodial.Trunk{def, second}))
	assert.ErrorContains(t, autodial.CheckTrunks([]autodial.Trunk{second}), "no template without a prefix")
	assert.ErrorContains(t, autodial.CheckTrunks([]autodial.Trunk{def, def}), "two templates without a prefix")
	assert.ErrorContains(t, autodial.CheckTrunks([]autodial.Trunk{def, second, second}), "prefix 90533 given twice")
}

// countingDialer counts each trunk's calls up, from the originate to
// kanca's hang-up (before the runner frees the call's place).
type countingDialer struct {
	autodial.Dialer
	mu      sync.Mutex
	trunkOf map[string]string
	up      map[string]int
	peak    map[string]int
	all     int
	peakAll int
}

func (d *countingDialer) Originate(ctx context.Context, p autodial.Placement) error {
	_, trunk, _ := strings.Cut(p.Endpoint, "@")
	d.mu.Lock()
	d.trunkOf[p.Channel] = trunk
	d.up[trunk]++
	d.peak[trunk] = max(d.peak[trunk], d.up[trunk])
	d.all++
	d.peakAll = max(d.peakAll, d.all)
	d.mu.Unlock()
	return d.Dialer.Originate(ctx, p)
}

func (d *countingDialer) Hangup(ctx context.Context, channel string) error {
	d.mu.Lock()
	if trunk, ok := d.trunkOf[channel]; ok {
		delete(d.trunkOf, channel)
		d.up[trunk]--
		d.all--
	}
	d.mu.Unlock()
	return d.Dialer.Hangup(ctx, channel)
}

// Each trunk has its own bound: with one call at a time per trunk, the
// two trunks' calls run side by side, each trunk's one after another,
// and each number goes out on the trunk its prefix picks.
func TestConcurrencyPerTrunk(t *testing.T) {
	rg := newRig(t, filepath.Join(t.TempDir(), "c.db"), nil)
	d := &countingDialer{Dialer: rg.runner.Dialer, trunkOf: map[string]string{}, up: map[string]int{}, peak: map[string]int{}}
	rg.runner.Dialer = d
	rg.runner.Concurrency = 1
	rg.runner.Trunks = []autodial.Trunk{{Template: "PJSIP/{number}@carrier"}, {Prefix: "90533", Template: "PJSIP/{number}@second"}}
	id := enqueue(t, rg.store, autodial.Request{Numbers: []string{"905321111111", "905322222222", "905331111111", "905332222222"}, Text: "x"})
	rg.run(t)
	waitStates(t, rg.store, id, map[string]string{"905321111111": autodial.StateAnswered, "905322222222": autodial.StateAnswered,
		"905331111111": autodial.StateAnswered, "905332222222": autodial.StateAnswered})
	d.mu.Lock()
	defer d.mu.Unlock()
	assert.Equal(t, map[string]int{"carrier": 1, "second": 1}, d.peak, "at most one call up per trunk")
	assert.Equal(t, 2, d.peakAll, "the trunks' bounds are their own")
	endpoints := map[string]bool{}
	for _, o := range rg.ast.Originated() {
		endpoints[o.Query["endpoint"]] = true
	}
	assert.Equal(t, map[string]bool{"PJSIP/05321111111@carrier": true, "PJSIP/05322222222@carrier": true,
		"PJSIP/05331111111@second": true, "PJSIP/05332222222@second": true}, endpoints)
}
