package pbxflags

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A PBX named as its makers write it is the same PBX; another is refused,
// naming both places it may have come from.
func TestCheck(t *testing.T) {
	for in, want := range map[string]string{"FreeSWITCH": FreeSWITCH, " asterisk": Asterisk, "Asterisk": Asterisk} {
		f := Flags{PBX: in}
		require.NoError(t, f.Check(), in)
		assert.Equal(t, want, f.PBX, in)
	}
	f := Flags{PBX: "freeswitsh"}
	assert.EqualError(t, f.Check(), `--pbx "freeswitsh" (or KANCA_PBX): want asterisk or freeswitch`)
}
