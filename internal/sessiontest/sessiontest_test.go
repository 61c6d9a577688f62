package sessiontest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/peerwire/peerwire/internal/sessiontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// refuse listens on f's core with serverCfg, hands the first attempt to decide, and dials it
// with clientCfg. It returns the dial's refusal (Dial's error, or the cause of the dialed
// connection's end) and decide's error.
func refuse(t *testing.T, f sessiontest.CoreFactory, clientCfg, serverCfg *session.Config,
	decide func(context.Context, session.Incoming) error) (refusal, serverErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	core := f.New()
	defer core.Close()
	ln, err := core.Listen(f.Addr, serverCfg)
	require.NoError(t, err)
	defer ln.Close()
	result := make(chan error, 1)
	go func() {
		in, err := ln.Accept(ctx)
		if err == nil {
			err = decide(ctx, in)
		}
		result <- err
	}()
	c, err := core.Dial(ctx, ln.Addr().String(), clientCfg)
	if err == nil {
		defer c.CloseWithError(0, "")
	}
	refusal = sessiontest.Refusal(t, c, err)
	return refusal, <-result
}

// A listener whose application rejects the attempt: the dialer sees session.ErrRejected, from
// Dial or as the cause of its connection's end.
func TestApplicationRejection(t *testing.T) {
	for _, f := range sessiontest.Cores() {
		t.Run(f.Name, func(t *testing.T) {
			cc, sc := sessiontest.Configs(t)
			refusal, serverErr := refuse(t, f, cc, sc, func(ctx context.Context, in session.Incoming) error {
				require.NoError(t, in.Reject())
				_, err := in.Accept(ctx)
				return err
			})
			require.ErrorIs(t, refusal, session.ErrRejected)
			require.ErrorIs(t, serverErr, session.ErrRejected, "Accept after Reject")
		})
	}
}

// A listener whose trust refuses the dialer: the dialer sees a *certs.RejectedByPeerError,
// from Dial or as the cause, and the listener's Accept a *certs.RejectError.
func TestTrustRefusal(t *testing.T) {
	for _, f := range sessiontest.Cores() {
		t.Run(f.Name, func(t *testing.T) {
			cc, sc := sessiontest.Configs(t)
			sc.Trust = &certs.TrustPolicy{Hashes: []identity.CertHash{sessiontest.Credential(t).Hash()}}
			refusal, serverErr := refuse(t, f, cc, sc, func(ctx context.Context, in session.Incoming) error {
				_, err := in.Accept(ctx)
				return err
			})
			var byPeer *certs.RejectedByPeerError
			require.ErrorAs(t, refusal, &byPeer)
			require.True(t, byPeer.OurHash.Equal(cc.Credential.Hash()))
			var rej *certs.RejectError
			require.ErrorAs(t, serverErr, &rej)
			require.Equal(t, certs.ReasonHashNotTrusted, rej.Reason)
		})
	}
}
