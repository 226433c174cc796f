package runlock

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecondHolderIsRefusedWithTheFirstNamed(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kanca.db")
	l, err := Acquire(db)
	require.NoError(t, err)
	h, held := Held(db)
	require.True(t, held)
	assert.Equal(t, os.Getpid(), h.PID)

	_, err = Acquire(db)
	require.ErrorIs(t, err, ErrHeld)
	host, _ := os.Hostname()
	assert.Contains(t, err.Error(), db)
	assert.Contains(t, err.Error(), "pid "+strconv.Itoa(os.Getpid())+" on "+host)

	require.NoError(t, l.Release())
	_, held = Held(db)
	assert.False(t, held)
	l, err = Acquire(db)
	require.NoError(t, err, "free again once released")
	require.NoError(t, l.Release())
}

// A process killed while it holds the lock (SIGKILL: no cleanup runs)
// does not block the next start.
func TestKilledHolderDoesNotBlockARestart(t *testing.T) {
	if os.Getenv("RUNLOCK_HOLD") != "" {
		_, err := Acquire(os.Getenv("RUNLOCK_HOLD"))
		if err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Minute)
		return
	}
	db := filepath.Join(t.TempDir(), "kanca.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledHolderDoesNotBlockARestart$")
	cmd.Env = append(os.Environ(), "RUNLOCK_HOLD="+db)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 5)
	_, err = out.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "held\n", string(buf))

	_, err = Acquire(db)
	require.ErrorIs(t, err, ErrHeld, "held by the child")
	assert.Contains(t, err.Error(), "pid "+strconv.Itoa(cmd.Process.Pid))

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	h, err := Read(db)
	require.NoError(t, err)
	assert.Equal(t, cmd.Process.Pid, h.PID, "the stale file still names the dead process")
	l, err := Acquire(db)
	require.NoError(t, err, "a killed holder's lock is gone")
	require.NoError(t, l.Release())
}
