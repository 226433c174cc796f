package cluster

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stream just made that the server answering next has not applied yet
// ("stream not found" from its Info) is asked for again, not a failure:
// a worker starting beside a cluster that had just started exited so.
func TestFindOrMakeWaitsForWhatItMadeToBeFound(t *testing.T) {
	made := false
	finds, readies := 0, 0
	got, err := findOrMake(context.Background(), found[string]{
		find: func(context.Context) (string, error) {
			finds++
			if !made || finds < 3 {
				return "", jetstream.ErrStreamNotFound
			}
			return "events", nil
		},
		make: func(context.Context) (string, error) {
			if made {
				return "", jetstream.ErrStreamNameAlreadyInUse
			}
			made = true
			return "events", nil
		},
		ready: func(context.Context, string) error {
			readies++
			return jetstream.ErrStreamNotFound
		},
		absent: jetstream.ErrStreamNotFound, taken: jetstream.ErrStreamNameAlreadyInUse,
	})
	require.NoError(t, err)
	assert.Equal(t, "events", got)
	assert.Equal(t, 3, finds, "found on the third try")
	assert.Equal(t, 1, readies)
}

// Anything else ready says is the answer.
func TestFindOrMakeFailsOnWhatIsNotAnAbsence(t *testing.T) {
	boom := errors.New("boom")
	_, err := findOrMake(context.Background(), found[string]{
		find:   func(context.Context) (string, error) { return "", jetstream.ErrStreamNotFound },
		make:   func(context.Context) (string, error) { return "events", nil },
		ready:  func(context.Context, string) error { return boom },
		absent: jetstream.ErrStreamNotFound, taken: jetstream.ErrStreamNameAlreadyInUse,
	})
	require.ErrorIs(t, err, boom)
}
