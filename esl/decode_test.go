package esl

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

func TestDecodeErrorsAndSkips(t *testing.T) {
	for _, bad := range []string{`not json`, `{}`, `{"Event-Name":"CHANNEL_CREATE","Event-Date-Timestamp":"1"}`,
		`{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"a"}`} {
		_, ok, err := Decode([]byte(bad))
		assert.False(t, ok, bad)
		assert.True(t, errors.Is(err, ErrMalformed), bad)
	}
	for _, skip := range []string{`{"Event-Name":"HEARTBEAT"}`, `{"Event-Name":"CUSTOM","Event-Subclass":"callcenter::info","CC-Action":"members-count"}`} {
		_, ok, err := Decode([]byte(skip))
		assert.False(t, ok, skip)
		assert.NoError(t, err, skip)
	}
}

func TestDecodeBLegHangupIsDialStatus(t *testing.T) {
	in, ok, err := Decode([]byte(`{"Event-Name":"CHANNEL_HANGUP","Event-Date-Timestamp":"1795351595016000",
		"FreeSWITCH-Switchname":"fs","Unique-ID":"b","Other-Type":"originator","Other-Leg-Unique-ID":"a",
		"Hangup-Cause":"NO_ANSWER","Caller-Channel-Answered-Time":"0"}`))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, cdr.KindDial, in.Kind)
	assert.Equal(t, "NOANSWER", in.DialStatus)
	assert.Equal(t, "a", in.Other.ID)
	assert.Equal(t, "a", in.Channel.LinkedID)
	assert.Equal(t, "fs", in.Server)
	assert.Equal(t, time.UnixMicro(1795351595016000), in.Time)
}

func TestOrder(t *testing.T) {
	o := NewOrder[int](2)
	var got []int
	for _, s := range []uint64{3, 1, 2, 5, 4, 6} {
		got = append(got, o.Push("core", s, time.Time{}, int(s))...)
	}
	got = append(got, o.Flush()...)
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6}, got)

	// Late beyond the window: released at once, not lost.
	assert.Equal(t, []int{0}, o.Push("core", 0, time.Time{}, 0))
	// A restarted FreeSWITCH (new Core-UUID) starts its sequences over.
	o.Push("core", 10, time.Time{}, 10)
	assert.Equal(t, []int{10}, o.Push("core2", 1, time.Time{}, 1))
	assert.Equal(t, []int{1}, o.Flush())
}
