// Package runlock keeps a second kanca run off a database that one
// already works: both would send every call, so each receiver got it
// twice. The lock is a file beside the database naming the process that
// holds it, locked with flock(2): the kernel drops the lock when that
// process ends however it ends, so a killed kanca never blocks a restart.
package runlock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kanca/kanca/internal/owner"
)

// Lock is a held lock; Release lets it go.
type Lock struct {
	f    *os.File
	path string
}

// Holder is who holds a lock, as it wrote itself into the file.
type Holder struct {
	PID     int
	Host    string
	Started time.Time
}

func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on %s", h.PID, h.Host)
	if !h.Started.IsZero() {
		s += ", since " + h.Started.Format(time.RFC3339)
	}
	return s
}

// ErrHeld is returned, wrapped with the holder, when another process
// holds the lock.
var ErrHeld = errors.New("in use by another kanca run")

// Path is the lock file of the database at db.
func Path(db string) string { return db + ".lock" }

// Acquire takes the lock of the database at db (an absolute path, so the
// message names it unambiguously) or says who holds it.
func Acquire(db string) (*Lock, error) {
	path := Path(db)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	if err := owner.OfDirectory(path); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h, rerr := Read(db)
			if rerr != nil {
				return nil, fmt.Errorf("database %s is %w (see %s)", db, ErrHeld, path)
			}
			return nil, fmt.Errorf("database %s is %w: %s; stop that one first, or give this one another --db", db, ErrHeld, h)
		}
		return nil, fmt.Errorf("lock database %s: %w", db, err)
	}
	host, _ := os.Hostname()
	line := fmt.Sprintf("%d %s %s\n", os.Getpid(), host, time.Now().UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(line), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock database %s: write %s: %w", db, path, err)
	}
	return &Lock{f: f, path: path}, nil
}

// Held reports who holds the lock of the database at db, if anyone does.
func Held(db string) (Holder, bool) {
	f, err := os.Open(Path(db))
	if err != nil {
		return Holder{}, false
	}
	defer f.Close()
	// A shared lock is granted only when no kanca run holds the
	// exclusive one; it is dropped again at once.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return Holder{}, false
	}
	h, err := Read(db)
	return h, err == nil
}

// Read parses the lock file of the database at db, whether or not it is
// still held.
func Read(db string) (Holder, error) {
	b, err := os.ReadFile(Path(db))
	if err != nil {
		return Holder{}, err
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return Holder{}, fmt.Errorf("lock file %s: unreadable", Path(db))
	}
	pid, err := strconv.Atoi(fields[0])
	if err != nil {
		return Holder{}, fmt.Errorf("lock file %s: unreadable pid: %w", Path(db), err)
	}
	h := Holder{PID: pid, Host: fields[1]}
	if len(fields) > 2 {
		h.Started, _ = time.Parse(time.RFC3339, fields[2])
	}
	return h, nil
}

// Release lets the lock go. The file stays: removing it would let a
// process that opened it just before lock a file no one else sees.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing drops the flock
	l.f = nil
	return err
}
