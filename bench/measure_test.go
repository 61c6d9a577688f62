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

// loggedEndpoint is an Endpoint that logs its sends under name (unless log is nil) and,
// when failAfter is positive, fails the send after failAfter successful ones.
type loggedEndpoint struct {
	Endpoint
	log       *sendLog
	name      string
	sent      int
	failAfter int
}

func (e *loggedEndpoint) Send(ctx context.Context, msg []byte) error {
	if e.failAfter > 0 && e.sent == e.failAfter {
		return errors.New("send refused by the test")
	}
	e.sent++
	if e.log != nil {
		e.log.add(e.name)
	}
	return e.Endpoint.Send(ctx, msg)
}

// loggedNode connects as its plain-TCP node does, wrapping the ends of each pair: the
// client's sends are logged; either end may be told to fail (failAfter).
type loggedNode struct {
	Node
	log                        *sendLog
	name                       string
	failAfter, serverFailAfter int
}

func (n *loggedNode) Connect(ctx context.Context, peer Node) (*Pair, error) {
	p, err := n.Node.Connect(ctx, peer.(*loggedNode).Node)
	if err != nil {
		return nil, err
	}
	p.Client = &loggedEndpoint{Endpoint: p.Client, log: n.log, name: n.name, failAfter: n.failAfter}
	p.Server = &loggedEndpoint{Endpoint: p.Server, name: n.name, failAfter: n.serverFailAfter}
	return p, nil
}

// loggedSystem is the plain-TCP reference under another name, its client sends logged;
// failAfter and serverFailAfter make its ends fail (0: never).
func loggedSystem(name string, log *sendLog, failAfter, serverFailAfter int) System {
	return System{Name: name, Family: "tcp", Nodes: func(ctx context.Context, n int) ([]Node, error) {
		nodes, err := tcpNodes(false)(ctx, n)
		for i, nd := range nodes {
			nodes[i] = &loggedNode{Node: nd, log: log, name: name, failAfter: failAfter, serverFailAfter: serverFailAfter}
		}
		return nodes, err
	}}
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

// The round trips of several systems are measured in blocks that take turns, the order
// rotating from one round of blocks to the next, and every system makes RoundTrips round
// trips.
func TestRTTInterleavesSystemsInBlocks(t *testing.T) {
	log := &sendLog{}
	ss := []System{loggedSystem("a", log, 0, 0), loggedSystem("b", log, 0, 0), loggedSystem("c", log, 0, 0)}
	size := Tiny
	size.RoundTrips = 2*rttBlocks + 3 // blocks of 2 and, for 3 of them, 3
	v, err := runRTT(t.Context(), ss, size)
	require.NoError(t, err)
	require.Len(t, v, 3)
	for i := range v {
		require.Len(t, v[i], 2)
		require.Positive(t, v[i][0], "p50")
		require.GreaterOrEqual(t, v[i][1], v[i][0], "p99 ≥ p50")
	}

	var want []string
	names := []string{"a", "b", "c"}
	for b := range rttBlocks {
		n := size.RoundTrips*(b+1)/rttBlocks - size.RoundTrips*b/rttBlocks
		for k := range names {
			want = append(want, fmt.Sprintf("%s×%d", names[(k+b)%3], n))
		}
	}
	got := runs(log.names)
	require.Equal(t, strings.Join(want, " "), strings.Join(got, " "))
	for _, name := range names {
		require.Equal(t, size.RoundTrips, strings.Count(strings.Join(log.names, ""), name))
	}
}

// One system measured alone makes its RoundTrips round trips in order.
func TestRTTAlone(t *testing.T) {
	log := &sendLog{}
	size := Tiny
	size.RoundTrips = 7
	i := slices.IndexFunc(Cases(), func(c Case) bool { return c.Name == "rtt" })
	v, err := Cases()[i].Run(t.Context(), loggedSystem("a", log, 0, 0), size)
	require.NoError(t, err)
	require.Len(t, v, 2)
	require.Equal(t, []string{"a×7"}, runs(log.names))
}

// A system that fails mid-way fails the measurement with its name; every connection is
// closed and every echo goroutine ends (TestMain checks for leaks).
func TestRTTFailureNamesTheSystem(t *testing.T) {
	log := &sendLog{}
	ss := []System{loggedSystem("a", log, 0, 0), loggedSystem("b", log, 5, 0), loggedSystem("c", log, 0, 0)}
	size := Tiny
	size.RoundTrips = 40
	_, err := runRTT(t.Context(), ss, size)
	require.EqualError(t, err, "b: send refused by the test", "the echoes we stopped add nothing")
}

// An echo that fails by itself ends the measurement (its client would otherwise wait for
// an answer for ever), and its error says why.
func TestRTTEchoFailureNamesTheSystem(t *testing.T) {
	log := &sendLog{}
	ss := []System{loggedSystem("a", log, 0, 0), loggedSystem("b", log, 0, 0), loggedSystem("c", log, 0, 5)}
	size := Tiny
	size.RoundTrips = 40
	_, err := runRTT(t.Context(), ss, size)
	require.ErrorContains(t, err, "c: echo: send refused by the test")
	require.True(t, strings.HasPrefix(err.Error(), "c: "), "the client's error comes first: %v", err)
	require.NotContains(t, err.Error(), "a:")
	require.NotContains(t, err.Error(), "b:")
}
