package doctor

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/esl/esltest"
)

func TestOriginateCheckARI(t *testing.T) {
	db, _, _ := database(t)
	for _, c := range []struct {
		readOnly bool
		want     Status
	}{{false, OK}, {true, Fail}} {
		ast := aritest.NewServer(aritest.Options{ReadOnly: c.readOnly})
		cfg := config(ast.URL, "kanca", db)
		rs := Run(context.Background(), cfg, nil)
		for _, r := range rs {
			assert.NotEqual(t, checkOriginate, r.Check, "only asked for")
		}
		cfg.Originate = true
		r := find(t, Run(context.Background(), cfg, nil), checkOriginate)
		assert.Equal(t, c.want, r.Status, r.Detail)
		if c.readOnly {
			assert.Contains(t, r.Fix, "read_only = no")
		}
		assert.Empty(t, ast.Originated(), "the check places no call")
		ast.Close()
	}
}

func TestOriginateCheckESL(t *testing.T) {
	db, _, _ := database(t)
	fs := esltest.NewServer(esltest.Options{Password: "esl-pw"})
	t.Cleanup(fs.Close)
	cfg := eslConfig(fs.Addr, "esl-pw", db)
	cfg.Originate = true
	r := find(t, Run(context.Background(), cfg, nil), checkOriginate)
	assert.Equal(t, OK, r.Status, "%s / %s", r.Detail, r.Fix)

	r = eslOriginateAnswer("-ERR originate Command not found!\n", nil)
	assert.Equal(t, Fail, r.Status)
	assert.Contains(t, r.Fix, "mod_commands")
	assert.Equal(t, Fail, eslOriginateAnswer("", errors.New("timeout")).Status)
}
