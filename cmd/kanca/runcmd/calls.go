package runcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/callapi"
	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
	"github.com/kanca/kanca/speech"
)

// callFlags configure calls on request.
type callFlags struct {
	dial          []string
	context       string
	concurrency   int
	speechCommand string
	speechDir     string
}

func (f *callFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.dial, "dial", strings.Fields(envdefault.String("KANCA_DIAL", "")),
		"place calls on request through this dial template, {number} the number as the trunk dials it: PJSIP/{number}@carrier (Asterisk) or sofia/gateway/carrier/{number} (FreeSWITCH); needs --listen (default off). Repeat it with PREFIX=TEMPLATE to send the numbers starting with PREFIX (international form: 90533=PJSIP/{number}@second) through another trunk; one template has no prefix [KANCA_DIAL, templates separated by spaces]")
	fs.StringVar(&f.context, "dial-context", envdefault.String("KANCA_DIAL_CONTEXT", "from-internal"),
		"dialplan context where click-to-call connects the answered call to its destination [KANCA_DIAL_CONTEXT]")
	fs.IntVar(&f.concurrency, "dial-concurrency", envdefault.Int("KANCA_DIAL_CONCURRENCY", 4),
		"calls on request up at once on each trunk (kanca's share of its channels); a trunk is the template's endpoint or gateway (carrier in PJSIP/{number}@carrier), shared by templates naming it [KANCA_DIAL_CONCURRENCY]")
	fs.StringVar(&f.speechCommand, "speech-command", envdefault.String("KANCA_SPEECH_COMMAND", speech.DefaultCommand),
		"text-to-speech command: text on stdin, writes a 16-bit PCM WAV to {out}, voice {voice} [KANCA_SPEECH_COMMAND]")
	fs.StringVar(&f.speechDir, "speech-dir", envdefault.String("KANCA_SPEECH_DIR", ""),
		"where rendered speech is cached (default: speech/ beside --db) [KANCA_SPEECH_DIR]")
}

// calls is calls on request, set up: the runner and its store.
type calls struct {
	store  *autodial.Store
	runner *autodial.Runner
}

// setupCalls opens the call store once (the handlers and the runner share
// it), registers the endpoints on mux and returns the runner to start.
func (f *callFlags) setup(db string, hs *hooks.Store, src *pbxSource, p *pipeline.Pipeline, mux *http.ServeMux, base string,
	country int, loc *time.Location, log *slog.Logger) (*calls, error) {
	if len(f.dial) == 0 {
		return nil, nil
	}
	trunks, err := f.trunks()
	if err != nil {
		return nil, err
	}
	if f.concurrency < 1 {
		return nil, errors.New("--dial-concurrency: want at least 1")
	}
	dir := f.speechDir
	if dir == "" {
		dir = filepath.Join(filepath.Dir(db), "speech")
	}
	rend, err := speech.New(dir, f.speechCommand)
	if err != nil {
		return nil, err
	}
	var dialer autodial.Dialer
	switch {
	case src.ari != nil:
		dialer = autodial.ARIDialer{Client: src.ari.Client(), App: src.ari.App(), Context: f.context}
	case src.esl != nil:
		dialer = autodial.ESLDialer{Conn: src.esl, Context: f.context}
	}
	store, err := autodial.Open(autodial.PathFor(db))
	if err != nil {
		return nil, err
	}
	nums := autodial.Numbers{Country: strconv.Itoa(country), Premium: autodial.DefaultPremium}
	r := &autodial.Runner{
		Store: store, Dialer: dialer, Announce: p.Inject, Numbers: nums, Location: loc,
		Trunks: trunks, Concurrency: f.concurrency, Logger: log,
		Speak: func(ctx context.Context, text, voice string) (string, time.Duration, error) {
			id, d, err := rend.Render(ctx, text, voice)
			if err != nil {
				return "", 0, err
			}
			return base + "/speech/" + id + ".wav", d, nil
		},
	}
	p.Observe = r.Observe
	callback := func(ctx context.Context, url string) error {
		_, err := hs.CallbackHook(ctx, url)
		return err
	}
	callapi.Register(mux, callapi.Config{Store: store, Numbers: nums, Wake: r.Wake, Callback: callback, Speech: rend,
		Location: loc, Logger: log})
	return &calls{store: store, runner: r}, nil
}

// trunks reads the --dial templates.
func (f *callFlags) trunks() ([]autodial.Trunk, error) {
	var out []autodial.Trunk
	for _, d := range f.dial {
		t, err := autodial.ParseTrunk(d)
		if err != nil {
			return nil, fmt.Errorf("--dial %w", err)
		}
		out = append(out, t)
	}
	if err := autodial.CheckTrunks(out); err != nil {
		return nil, fmt.Errorf("--dial: %w", err)
	}
	return out, nil
}
