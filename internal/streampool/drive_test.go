package streampool_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/streampool"
)

// refusingDriver is a connection whose reader goroutine is always reading: every DriveRead
// is refused, and the test says when the reader hands the reading over. Only the methods
// below are called by a pool that receives and accepts nothing.
type refusingDriver struct {
	session.Conn
	ctx    context.Context
	drives atomic.Int32
	handed chan struct{}
}

func (c *refusingDriver) Context() context.Context { return c.ctx }
func (c *refusingDriver) AcceptUniStream(ctx context.Context) (session.ReceiveStream, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (c *refusingDriver) DriveRead(context.Context, func() bool) bool {
	c.drives.Add(1)
	return false
}
func (c *refusingDriver) InterruptRead()                  {}
func (c *refusingDriver) ReadHandedOver() <-chan struct{} { return c.handed }

// A Recv whose DriveRead found the connection's reader reading waits for its message and
// for the hand-over; once the reader hands over, it drives again at once, rather than
// leaving the connection unread until the reader's grace period runs out.
func TestRecvDrivesAgainWhenTheReaderHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &refusingDriver{ctx: t.Context(), handed: make(chan struct{}, 1)}
		pool := streampool.New(c, streampool.Config{})
		defer pool.Close()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := pool.Recv(ctx)
			errc <- err
		}()
		synctest.Wait()
		require.Equal(t, int32(1), c.drives.Load(), "Recv found nothing queued and tried to read")

		c.handed <- struct{}{}
		synctest.Wait()
		require.Equal(t, int32(2), c.drives.Load(), "the hand-over made Recv read again")
		c.handed <- struct{}{}
		synctest.Wait()
		require.Equal(t, int32(3), c.drives.Load())

		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
	})
}
