package wire

import (
	"bytes"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/quicvarint"
	"github.com/stretchr/testify/require"
)

func testTransportParameters() TransportParameters {
	return TransportParameters{
		MaxIdleTimeout:                 30 * time.Second,
		InitialMaxData:                 1 << 20,
		InitialMaxStreamDataBidiLocal:  1 << 18,
		InitialMaxStreamDataBidiRemote: 1 << 18,
		InitialMaxStreamDataUni:        1 << 18,
		InitialMaxStreamsBidi:          100,
		InitialMaxStreamsUni:           100,
		MaxRecordSize:                  1 << 16,
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	require.NoError(t, err)
	return b
}

// deployedFirstRecord is the first record a deployed QMux peer sent
// (cleartext): a 2-byte Size of 44 and a QX_TRANSPORT_PARAMETERS frame whose
// Length is 28 as an 8-byte varint.
const deployedFirstRecord = "402c ff5153300d0a0d0a c00000000000001c" +
	"01011e 040480190000 05027ffc 06027ffc 07027ffc 08024064 090103"

func TestDeployedFirstRecord(t *testing.T) {
	stream := unhex(t, deployedFirstRecord)
	rr := NewRecordReader(bytes.NewReader(stream), 0)
	rec, err := rr.Next()
	require.NoError(t, err)
	require.Len(t, rec, 44)

	f, n, err := (&Parser{}).ParseNext(rec)
	require.NoError(t, err)
	require.Equal(t, 44, n)
	require.Equal(t, &TransportParametersFrame{Params: TransportParameters{
		// max_idle_timeout is in milliseconds (RFC 9000 §18.2): 0x1e is 30ms.
		MaxIdleTimeout:                 30 * time.Millisecond,
		InitialMaxData:                 0x190000,
		InitialMaxStreamDataBidiLocal:  0x3ffc,
		InitialMaxStreamDataBidiRemote: 0x3ffc,
		InitialMaxStreamDataUni:        0x3ffc,
		InitialMaxStreamsBidi:          100,
		InitialMaxStreamsUni:           3,
		MaxRecordSize:                  DefaultMaxRecordSize,
	}}, f)

	_, err = rr.Next()
	require.ErrorIs(t, err, io.EOF)
}

func TestOurFirstRecord(t *testing.T) {
	// Record { Size (2-byte varint), QX_TRANSPORT_PARAMETERS { Type, Length,
	// Parameters } } as in qmux-02 §3.2 and §4.2, parameters in ID order.
	b, start := BeginRecord(nil, SizeFieldLen(DefaultMaxRecordSize))
	b = (&TransportParametersFrame{Params: testTransportParameters()}).Append(b)
	b = EndRecord(b, start)
	want := unhex(t, "403c"+ // Size 60
		"ff5153300d0a0d0a"+ // QX_TRANSPORT_PARAMETERS
		"33"+ // Length 51
		"0104 80007530"+ // max_idle_timeout 30000 ms
		"0404 80100000"+ // initial_max_data 1 MiB
		"0504 80040000"+ // initial_max_stream_data_bidi_local 256 KiB
		"0604 80040000"+ // initial_max_stream_data_bidi_remote 256 KiB
		"0704 80040000"+ // initial_max_stream_data_uni 256 KiB
		"0802 4064"+ // initial_max_streams_bidi 100
		"0902 4064"+ // initial_max_streams_uni 100
		"c571c59429cd0845 04 80010000") // max_record_size 64 KiB
	require.Equal(t, want, b)
}

func TestTransportParametersDefaults(t *testing.T) {
	var p TransportParameters
	require.NoError(t, p.Parse(nil))
	require.Equal(t, TransportParameters{MaxRecordSize: DefaultMaxRecordSize}, p)
	// Defaults are not sent.
	require.Empty(t, p.Append(nil))
	require.Empty(t, (&TransportParameters{}).Append(nil))
	require.Equal(t, unhex(t, "ff5153300d0a0d0a 00"), (&TransportParametersFrame{}).Append(nil))
}

func TestTransportParametersExtensions(t *testing.T) {
	p := TransportParameters{MaxDatagramFrameSize: 65535, ResetStreamAt: true}
	require.Equal(t, unhex(t, "1d00 2004 8000ffff"), p.Append(nil))
	var q TransportParameters
	require.NoError(t, q.Parse(p.Append(nil)))
	p.MaxRecordSize = DefaultMaxRecordSize
	require.Equal(t, p, q)
}

func TestTransportParametersRoundTrip(t *testing.T) {
	for _, p := range []TransportParameters{
		testTransportParameters(),
		{MaxIdleTimeout: time.Millisecond, InitialMaxStreamsBidi: maxStreamCount, InitialMaxStreamsUni: 1},
		{InitialMaxData: quicvarint.Max, MaxRecordSize: quicvarint.Max, MaxDatagramFrameSize: 1, ResetStreamAt: true},
	} {
		require.NoError(t, p.Validate())
		b := p.Append(nil)
		require.Len(t, b, p.Length())
		var q TransportParameters
		require.NoError(t, q.Parse(b))
		p.MaxRecordSize = max(p.MaxRecordSize, DefaultMaxRecordSize)
		require.Equal(t, p, q)
	}
}

func TestTransportParametersIdleTimeoutMilliseconds(t *testing.T) {
	p := TransportParameters{MaxIdleTimeout: 1500*time.Microsecond + 10*time.Second}
	require.Equal(t, unhex(t, "0102 6711"), p.Append(nil)) // 10001 ms, rounded down
	p.MaxIdleTimeout = time.Microsecond
	require.Equal(t, unhex(t, "0101 01"), p.Append(nil)) // not 0, which would disable it
	var q TransportParameters
	require.NoError(t, q.Parse(unhex(t, "0108 ffffffffffffffff")))
	require.Equal(t, time.Duration(maxIdleTimeoutMillis)*time.Millisecond, q.MaxIdleTimeout)
}

func TestTransportParametersIgnoresUnknownAndGrease(t *testing.T) {
	var b []byte
	for _, id := range []uint64{27, 31*5 + 27, 31*1000000 + 27, 0x11, 0x2ab2, 0xff73db} {
		b = quicvarint.Append(b, id)
		b = quicvarint.Append(b, 3)
		b = append(b, 1, 2, 3)
	}
	b = append(b, 0x09, 0x01, 0x07)
	var p TransportParameters
	require.NoError(t, p.Parse(b))
	require.Equal(t, TransportParameters{InitialMaxStreamsUni: 7, MaxRecordSize: DefaultMaxRecordSize}, p)
}

func TestTransportParametersProhibited(t *testing.T) {
	// qmux-02 §5.1: the RFC 9000 parameters other than the seven permitted
	// ones are a TRANSPORT_PARAMETER_ERROR.
	for _, id := range []uint64{0x00, 0x02, 0x03, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10} {
		for _, value := range [][]byte{{}, {0x01}, make([]byte, 16)} {
			b := quicvarint.Append(nil, id)
			b = quicvarint.Append(b, uint64(len(value)))
			b = append(b, value...)
			var p TransportParameters
			e := requireCode(t, p.Parse(b), TransportParameterError)
			require.Equal(t, uint64(FrameTypeTransportParameters), e.FrameType)
		}
	}
}

func TestTransportParametersInvalid(t *testing.T) {
	for name, in := range map[string]string{
		"duplicate":                     "0901 03 0901 03",
		"duplicate unknown":             "2a00 2a00",
		"duplicate reset_stream_at":     "1d00 1d00",
		"max_record_size below default": "c571c59429cd0845 02 7ffd",
		"max_record_size zero":          "c571c59429cd0845 01 00",
		"value shorter than length":     "0402 05",
		"value longer than its varint":  "0402 0500",
		"varint longer than value":      "0401 40",
		"empty integer value":           "0400",
		"streams bidi above 2^60":       "0808 d000000000000001",
		"streams uni above 2^60":        "0908 d000000000000001",
		"reset_stream_at with value":    "1d01 00",
		"truncated id":                  "c571",
		"truncated length":              "04",
		"truncated 2-byte length":       "04 40",
		"truncated value":               "0404 8000",
	} {
		t.Run(name, func(t *testing.T) {
			var p TransportParameters
			requireCode(t, p.Parse(unhex(t, in)), TransportParameterError)
		})
	}
}

func TestTransportParametersManyUnknownDuplicates(t *testing.T) {
	// Past the inline table of seen IDs, duplicates are still found.
	var b []byte
	for id := uint64(100); id < 200; id++ {
		b = append(quicvarint.Append(b, id), 0)
	}
	var p TransportParameters
	require.NoError(t, p.Parse(b))
	b = append(quicvarint.Append(b, 150), 0)
	requireCode(t, p.Parse(b), TransportParameterError)
}

func TestTransportParametersValidate(t *testing.T) {
	require.NoError(t, (&TransportParameters{}).Validate())
	require.Error(t, (&TransportParameters{MaxRecordSize: DefaultMaxRecordSize - 1}).Validate())
	require.Error(t, (&TransportParameters{InitialMaxStreamsBidi: maxStreamCount + 1}).Validate())
	require.Error(t, (&TransportParameters{InitialMaxData: quicvarint.Max + 1}).Validate())
	require.Error(t, (&TransportParameters{MaxIdleTimeout: -1}).Validate())
}

func TestTransportParametersFrameErrors(t *testing.T) {
	// A Length running past the record is a truncated frame (0x07); bad
	// parameters inside a well-delimited frame are 0x08.
	_, _, err := (&Parser{}).ParseNext(unhex(t, "ff5153300d0a0d0a 05 090103"))
	requireCode(t, err, FrameEncodingError)
	_, _, err = (&Parser{}).ParseNext(unhex(t, "ff5153300d0a0d0a 03 020100"))
	e := requireCode(t, err, TransportParameterError)
	require.Equal(t, uint64(FrameTypeTransportParameters), e.FrameType)
	// The frame's Length delimits the parameters: the next frame follows.
	f, n, err := (&Parser{}).ParseNext(unhex(t, "ff5153300d0a0d0a 03 090103 1005"))
	require.NoError(t, err)
	require.Equal(t, 12, n)
	require.EqualValues(t, 3, f.(*TransportParametersFrame).Params.InitialMaxStreamsUni)
}
