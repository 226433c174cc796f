package table

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestList(t *testing.T) {
	var b bytes.Buffer
	p := Printer{W: &b}
	require.NoError(t, p.List(nil, []string{"ID", "URL"}, [][]string{{"1", "http://a/"}, {"22", Dash("")}}))
	assert.Equal(t, "ID  URL\n1   http://a/\n22  -\n", b.String())

	b.Reset()
	p.JSON = true
	require.NoError(t, p.List([]int{}, []string{"ID"}, nil))
	assert.Equal(t, "[]\n", b.String())
}

func TestRecord(t *testing.T) {
	var b bytes.Buffer
	p := Printer{W: &b}
	require.NoError(t, p.Record(nil, []Field{F("id", "1"), F("enabled", YesNo(false))}))
	assert.Equal(t, "id:       1\nenabled:  no\n", b.String())

	b.Reset()
	p.JSON = true
	require.NoError(t, p.Record(map[string]int{"id": 1}, nil))
	assert.Equal(t, "{\n  \"id\": 1\n}\n", b.String())
}
