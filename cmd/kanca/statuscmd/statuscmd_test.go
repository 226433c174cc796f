package statuscmd

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/httpapi"
)

type connected struct{ since time.Time }

func (c connected) Stats() ari.Stats {
	return ari.Stats{Link: follow.Link{Connected: true, Since: c.since}}
}

// With --listen, kanca status asks the running daemon: the PBX connection
// and its age come from there.
func TestStatusAsksTheDaemon(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kanca.db")
	s, err := hooks.Open(db)
	require.NoError(t, err)
	defer s.Close()
	_, err = s.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: "http://127.0.0.1:1/"})
	require.NoError(t, err)
	api := httptest.NewServer(httpapi.Handler(httpapi.Config{Store: s, ARI: connected{time.Now().Add(-2 * time.Hour)}}))
	defer api.Close()

	cmd := New(&db)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs([]string{"--listen", strings.TrimPrefix(api.URL, "http://")})
	require.NoError(t, cmd.Execute(), errb.String())
	assert.Empty(t, errb.String())
	assert.Contains(t, out.String(), "running (answered)")
	assert.Regexp(t, `asterisk:\s+connected since \S+ \(2h ago\)`, out.String())
	assert.Regexp(t, `\n1\s+908508850000\s+yes\s+0\s+0\s+0\s+-\s+-\n`, out.String())
}
