package hooks

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSignStandardWebhooksVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/standard-webhooks-vectors.json")
	require.NoError(t, err)
	var file struct {
		Vectors []struct {
			Key       string `json:"key"`
			MsgID     string `json:"msg_id"`
			Timestamp int64  `json:"timestamp"`
			Payload   string `json:"payload"`
			Signature string `json:"signature"`
		} `json:"vectors"`
		NotMatching []string `json:"not_matching"`
	}
	require.NoError(t, json.Unmarshal(raw, &file))
	require.NotEmpty(t, file.Vectors)
	for _, v := range file.Vectors {
		key, err := signingKey(v.Key)
		require.NoError(t, err)
		ts := time.Unix(v.Timestamp, 0)
		got := sign(key, v.MsgID, ts, []byte(v.Payload))
		assert.Equal(t, v.Signature, got)
		assert.NotContains(t, file.NotMatching, got)
		assert.NotEqual(t, v.Signature, sign(key, v.MsgID, ts, []byte(v.Payload+" ")), "body is signed")
		assert.NotEqual(t, v.Signature, sign(key, v.MsgID, ts.Add(time.Second), []byte(v.Payload)), "timestamp is signed")
		assert.NotEqual(t, v.Signature, sign(key, v.MsgID+"x", ts, []byte(v.Payload)), "id is signed")
	}
}
