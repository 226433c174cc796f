package netflags

import (
	"io"
	"log/slog"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNetFlagsFromEnvironmentAndFlags(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("KANCA_HOOK_ALLOW_NET", "10.0.0.0/8, 192.168.1.7")
	t.Setenv("KANCA_HOOK_DENY_NET", "")
	var nf Flags
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	nf.Register(fs)
	require.NoError(t, fs.Parse(nil))
	p, err := nf.Policy(log)
	require.NoError(t, err)
	assert.Equal(t, "allow 10.0.0.0/8,192.168.1.7/32", p.String(), "from the environment")
	require.NoError(t, fs.Parse([]string{"--hook-deny-net", "10.9.0.0/16,10.8.0.1"}))
	p, err = nf.Policy(log)
	require.NoError(t, err)
	assert.Equal(t, "allow 10.0.0.0/8,192.168.1.7/32; deny 10.9.0.0/16,10.8.0.1/32", p.String(), "a flag beside the environment")

	var bad Flags
	bad.Deny = []string{"localhost"}
	_, err = bad.Policy(log)
	require.Error(t, err)
	assert.Equal(t, `--hook-allow-net/--hook-deny-net: hook network deny list: "localhost" is not a CIDR prefix (10.0.0.0/8) or an IP address`, err.Error())
}
