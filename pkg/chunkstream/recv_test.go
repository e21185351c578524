package chunkstream

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecvAll(t *testing.T) {
	t.Parallel()
	msgs := [][]byte{nil, []byte("ab"), []byte("cd")}
	i := 0
	recv := func() ([]byte, error) {
		if i == len(msgs) {
			return nil, io.EOF
		}
		i++
		return msgs[i-1], nil
	}
	var buf bytes.Buffer
	require.NoError(t, RecvAll(recv, &buf))
	require.Equal(t, "abcd", buf.String())

	boom := errors.New("stream broke")
	require.ErrorIs(t, RecvAll(func() ([]byte, error) { return nil, boom }, &buf), boom)

	i = 0
	var small bytes.Buffer
	require.ErrorIs(t, RecvAll(recv, &Limited{W: &small, Max: 3}), ErrTooLarge)
	require.Equal(t, "ab", small.String())
}
