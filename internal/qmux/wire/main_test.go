package wire

import (
	"errors"
	"go/parser"
	"go/token"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPackageHasDocComment(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "doc.go", nil, parser.PackageClauseOnly|parser.ParseComments)
	require.NoError(t, err)
	require.NotNil(t, f.Doc)
	require.Contains(t, f.Doc.Text(), "Package wire is the QMux-02 wire codec")
}

// requireCode asserts that err is a *Error with the given code.
func requireCode(t testing.TB, err error, code TransportErrorCode) *Error {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "error %v (%T) is not a *Error", err, err)
	require.Equal(t, code, e.Code, "error: %v", err)
	return e
}

// cloneFrame deep-copies a frame returned by a Parser, whose value and byte
// slices are only valid until the next call. Byte slices are always non-nil
// so that frames compare equal regardless of how they were built.
func cloneFrame(f Frame) Frame {
	cp := func(b []byte) []byte { return append([]byte{}, b...) }
	switch f := f.(type) {
	case *PaddingFrame:
		c := *f
		return &c
	case *ResetStreamFrame:
		c := *f
		return &c
	case *StopSendingFrame:
		c := *f
		return &c
	case *StreamFrame:
		c := *f
		c.Data = cp(f.Data)
		return &c
	case *MaxDataFrame:
		c := *f
		return &c
	case *MaxStreamDataFrame:
		c := *f
		return &c
	case *MaxStreamsFrame:
		c := *f
		return &c
	case *DataBlockedFrame:
		c := *f
		return &c
	case *StreamDataBlockedFrame:
		c := *f
		return &c
	case *StreamsBlockedFrame:
		c := *f
		return &c
	case *ConnectionCloseFrame:
		c := *f
		c.Reason = cp(f.Reason)
		return &c
	case *ResetStreamAtFrame:
		c := *f
		return &c
	case *DatagramFrame:
		c := *f
		c.Data = cp(f.Data)
		return &c
	case *TransportParametersFrame:
		c := *f
		return &c
	case *PingFrame:
		c := *f
		return &c
	}
	panic("unknown frame type")
}

// fullParser accepts every frame type, including the negotiated extensions.
func fullParser() *Parser {
	return &Parser{MaxDatagramFrameSize: 1 << 20, ResetStreamAt: true}
}
