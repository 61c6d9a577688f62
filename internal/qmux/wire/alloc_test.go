package wire

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSteadyStateDoesNotAllocate(t *testing.T) {
	stream := (&StreamFrame{StreamID: 4, Offset: 1 << 20, Data: make([]byte, 1000), HasLength: true}).Append(nil)
	streamToEnd := (&StreamFrame{StreamID: 4, Offset: 1 << 20, Data: make([]byte, 1000), Fin: true}).Append(nil)
	maxData := (&MaxDataFrame{MaximumData: 1 << 30}).Append(nil)
	maxStreamData := (&MaxStreamDataFrame{StreamID: 4, MaximumStreamData: 1 << 20}).Append(nil)
	p := &Parser{}
	allocs := testing.AllocsPerRun(100, func() {
		for _, b := range [][]byte{stream, streamToEnd, maxData, maxStreamData} {
			if _, _, err := p.ParseNext(b); err != nil {
				t.Fatal(err)
			}
		}
	})
	require.Zero(t, allocs)
}

func TestEncodeIntoPresizedBufferDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 4096)
	stream := &StreamFrame{StreamID: 1 << 40, Offset: 1 << 50, Data: make([]byte, 1000), HasLength: true}
	maxData := &MaxDataFrame{MaximumData: 1 << 61}
	params := &TransportParametersFrame{Params: testTransportParameters()}
	allocs := testing.AllocsPerRun(100, func() {
		b, start := BeginRecord(buf[:0], 2)
		b = maxData.Append(b)
		b = params.Append(b)
		b = stream.Append(b)
		_ = EndRecord(b, start)
	})
	require.Zero(t, allocs)
}

// repeatReader returns its data over and over.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.data[r.off:])
		n += c
		r.off = (r.off + c) % len(r.data)
	}
	return n, nil
}

var _ io.Reader = (*repeatReader)(nil)

func TestRecordReaderSteadyStateDoesNotAllocate(t *testing.T) {
	// Records of an odd size, so that they straddle the read buffer's end.
	rec := AppendRecordHeader(nil, 1001)
	rec = append(rec, make([]byte, 1001)...)
	rr := NewRecordReader(&repeatReader{data: rec}, 0)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := rr.Next(); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}
