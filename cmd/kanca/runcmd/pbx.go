package runcmd

import (
	"log/slog"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cmd/kanca/pbxflags"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/httpapi"
	"github.com/kanca/kanca/pipeline"
)

// pbxSource is the PBX source --pbx names, with what the HTTP side and the
// start-up log read of it.
type pbxSource struct {
	pipeline.Source // the *ari.Source or *esl.Source itself, so optional interfaces show through
	ari             *ari.Source
	esl             *esl.Source
	logArgs         []any
}

// newSource builds the source --pbx names; reads is the tracker's
// cdr.Config.ReadsVariable, so the source can drop what nobody reads;
// didVars are the dialplan's DID variables, which the source reads from a
// channel it adopts mid-call; onGap, when set, is told of every
// (re)connect's gap (follow.Config.OnReconcile).
func newSource(f *pbxflags.Flags, reads func(string) bool, didVars []string, log *slog.Logger, onGap func(follow.Gap)) (*pbxSource, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	if f.PBX == pbxflags.FreeSWITCH {
		cfg, err := f.ESL.Config(log)
		if err != nil {
			return nil, err
		}
		cfg.DIDVariables = didVars
		cfg.OnReconcile = onGap
		src, err := esl.New(cfg)
		if err != nil {
			return nil, err
		}
		return &pbxSource{Source: src, esl: src, logArgs: []any{"pbx", f.PBX, "esl", src.Addr()}}, nil
	}
	cfg, err := f.ARI.Config(log)
	if err != nil {
		return nil, err
	}
	cfg.ReadsVariable = reads
	cfg.DIDVariables = didVars
	cfg.OnReconcile = onGap
	src, err := ari.New(cfg)
	if err != nil {
		return nil, err
	}
	return &pbxSource{Source: src, ari: src, logArgs: []any{"pbx", f.PBX, "ari", cfg.URL, "app", cfg.App}}, nil
}

// api adds the source's stats to cfg; only the one in use is set, so the
// other stays a nil interface.
func (s *pbxSource) api(cfg httpapi.Config) httpapi.Config {
	if s.ari != nil {
		cfg.ARI = s.ari
	}
	if s.esl != nil {
		cfg.ESL = s.esl
	}
	return cfg
}
