package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// sendLog records, in order, the name of the system of every message its endpoints send.
type sendLog struct {
	mu    sync.Mutex
	names []string
}

func (l *sendLog) add(name string) {
	l.mu.Lock()
	l.names = append(l.names, name)
	l.mu.Unlock()
}

// loggedEndpoint is an Endpoint that logs its sends under name (unless log is nil) and
// fails its sends after sendFails successful ones, its receives after recvFails (0: never).
type loggedEndpoint struct {
	Endpoint
	log                  *sendLog
	name                 string
	sent, recvd          int
	sendFails, recvFails int
}

var errRefused = errors.New("refused by the test")

func (e *loggedEndpoint) Send(ctx context.Context, msg []byte) error {
	if e.sendFails > 0 && e.sent == e.sendFails {
		return fmt.Errorf("send %w", errRefused)
	}
	e.sent++
	if e.log != nil {
		e.log.add(e.name)
	}
	return e.Endpoint.Send(ctx, msg)
}

func (e *loggedEndpoint) Recv(ctx context.Context) ([]byte, error) {
	if e.recvFails > 0 && e.recvd == e.recvFails {
		return nil, fmt.Errorf("recv %w", errRefused)
	}
	e.recvd++
	return e.Endpoint.Recv(ctx)
}

// logged describes a test system: the plain-TCP reference under another name, its client's
// sends logged, its ends failing after as many operations as told (0: never).
type logged struct {
	name                                              string
	log                                               *sendLog
	clientSendFails, serverSendFails, serverRecvFails int
}

// loggedNode connects as its plain-TCP node does and wraps both ends of each pair.
type loggedNode struct {
	Node
	logged
}

func (n *loggedNode) Connect(ctx context.Context, peer Node) (*Pair, error) {
	p, err := n.Node.Connect(ctx, peer.(*loggedNode).Node)
	if err != nil {
		return nil, err
	}
	p.Client = &loggedEndpoint{Endpoint: p.Client, log: n.log, name: n.name, sendFails: n.clientSendFails}
	p.Server = &loggedEndpoint{Endpoint: p.Server, name: n.name, sendFails: n.serverSendFails,
		recvFails: n.serverRecvFails}
	return p, nil
}

func (l logged) system() System {
	return System{Name: l.name, Family: "tcp", Nodes: func(ctx context.Context, n int) ([]Node, error) {
		nodes, err := tcpNodes(false)(ctx, n)
		for i, nd := range nodes {
			nodes[i] = &loggedNode{Node: nd, logged: l}
		}
		return nodes, err
	}}
}

// abc returns three logged systems a, b and c sharing log.
func abc(log *sendLog) []logged {
	return []logged{{name: "a", log: log}, {name: "b", log: log}, {name: "c", log: log}}
}

func systems(ls []logged) []System {
	var ss []System
	for _, l := range ls {
		ss = append(ss, l.system())
	}
	return ss
}

// runs compresses a log into "name×count" runs.
func runs(names []string) []string {
	var out []string
	for i := 0; i < len(names); {
		j := i
		for j < len(names) && names[j] == names[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%s×%d", names[i], j-i))
		i = j
	}
	return out
}

// wantBlocks is the log of total sends per system of a, b and c measured side by side in
// blocks.
func wantBlocks(total, blocks int) string {
	var want []string
	names := []string{"a", "b", "c"}
	for b := range blocks {
		n := total*(b+1)/blocks - total*b/blocks
		for k := range names {
			want = append(want, fmt.Sprintf("%s×%d", names[(k+b)%3], n))
		}
	}
	return strings.Join(want, " ")
}

// The round trips of several systems are measured in blocks that take turns, the order
// rotating from one round of blocks to the next, and every system makes RoundTrips round
// trips.
func TestRTTInterleavesSystemsInBlocks(t *testing.T) {
	log := &sendLog{}
	size := Tiny
	size.RoundTrips = 2*rttBlocks + 3 // blocks of 2 and, for 3 of them, 3
	v, err := runRTT(t.Context(), systems(abc(log)), size)
	require.NoError(t, err)
	require.Len(t, v, 3)
	for i := range v {
		require.Len(t, v[i], 2)
		require.Positive(t, v[i][0], "p50")
		require.GreaterOrEqual(t, v[i][1], v[i][0], "p99 ≥ p50")
	}
	require.Equal(t, wantBlocks(size.RoundTrips, rttBlocks), strings.Join(runs(log.names), " "))
}

// The same for bulk transfers: every system sends all of BulkBytes, in blocks that take
// turns.
func TestBulkInterleavesSystemsInBlocks(t *testing.T) {
	log := &sendLog{}
	size := Tiny
	size.BulkBytes = (2*bulkBlocks + 1) * bulkMessage
	v, err := runBulk(t.Context(), systems(abc(log)), size)
	require.NoError(t, err)
	require.Len(t, v, 3)
	for i := range v {
		require.Len(t, v[i], 1)
		require.Positive(t, v[i][0])
	}
	require.Equal(t, wantBlocks(2*bulkBlocks+1, bulkBlocks), strings.Join(runs(log.names), " "))
}

// One system measured alone (Case.Run, as the testing.B benchmarks do) does all its work,
// in order.
func TestSideBySideCasesAlone(t *testing.T) {
	size := Tiny
	size.RoundTrips, size.BulkBytes = 7, 3*bulkMessage
	for name, want := range map[string]string{"rtt": "a×7", "bulk": "a×3"} {
		log := &sendLog{}
		i := slices.IndexFunc(Cases(), func(c Case) bool { return c.Name == name })
		require.NotNil(t, Cases()[i].RunTogether, name)
		v, err := Cases()[i].Run(t.Context(), logged{name: "a", log: log}.system(), size)
		require.NoError(t, err, name)
		require.Len(t, v, len(Cases()[i].Metrics), name)
		require.Equal(t, []string{want}, runs(log.names), name)
	}
}

// A system whose client fails mid-way fails the measurement with its name; the other end,
// stopped by us, adds nothing; every connection is closed and every goroutine ends
// (TestMain checks for leaks).
func TestSideBySideClientFailureNamesTheSystem(t *testing.T) {
	for _, tc := range []struct {
		run  func(context.Context, []System, Size) ([][]float64, error)
		size Size
	}{
		{runRTT, Size{RoundTrips: 40}},
		{runBulk, Size{BulkBytes: 16 * bulkMessage}},
	} {
		ls := abc(&sendLog{})
		ls[1].clientSendFails = 5
		_, err := tc.run(t.Context(), systems(ls), tc.size)
		require.EqualError(t, err, "b: send refused by the test")
	}
}

// An echo or a receiver that fails by itself ends the measurement (its client would
// otherwise wait for ever), and the error says why.
func TestSideBySideServerFailureNamesTheSystem(t *testing.T) {
	ls := abc(&sendLog{})
	ls[2].serverSendFails = 5
	_, err := runRTT(t.Context(), systems(ls), Size{RoundTrips: 40})
	require.ErrorIs(t, err, errRefused)
	require.ErrorContains(t, err, "echo: send refused by the test")
	require.True(t, strings.HasPrefix(err.Error(), "c: "), "%v", err)

	ls = abc(&sendLog{})
	ls[0].serverRecvFails = 5
	_, err = runBulk(t.Context(), systems(ls), Size{BulkBytes: 16 * bulkMessage})
	require.ErrorIs(t, err, errRefused)
	require.ErrorContains(t, err, "receiver: recv refused by the test")
	require.True(t, strings.HasPrefix(err.Error(), "a: "), "%v", err)
}
