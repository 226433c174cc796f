package books

import (
	"context"
	"errors"
	"time"
)

// jsonDir reads FreeSWITCH's mod_json_cdr files.
type jsonDir struct{ dir string }

func (d *jsonDir) Close() error { return nil }

func (d *jsonDir) Calls(ctx context.Context, from, to time.Time) ([]Call, error) {
	return nil, errors.New("books: reading mod_json_cdr files is not supported yet")
}
