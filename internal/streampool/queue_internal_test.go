package streampool

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func msg(i int) Message { return Message{Data: []byte{byte(i), byte(i >> 8)}} }

func TestRecvQueueKeepsOrderAndDropsStorageWhenDrained(t *testing.T) {
	q := newRecvQueue(128)
	require.Nil(t, q.items, "an idle queue holds no storage")
	done := make(chan struct{})
	for round := range 3 {
		for i := range 100 {
			require.True(t, q.put(msg(i), done))
		}
		require.Greater(t, cap(q.items), len(q.small), "a burst grows past the inline slots")
		for i := range 100 {
			m, ok := q.get()
			require.True(t, ok, "round %d message %d", round, i)
			require.Equal(t, msg(i).Data, m.Data)
		}
		_, ok := q.get()
		require.False(t, ok)
		q.unwait()
		require.Nil(t, q.items, "drained: the burst's storage is dropped")
	}
}

func TestRecvQueueReusesConsumedSlots(t *testing.T) {
	q := newRecvQueue(8)
	done := make(chan struct{})
	next, want := 0, 0
	for range 1000 {
		// Keep between 1 and 8 messages queued so the queue never drains.
		for len(q.items)-q.head < 8 {
			require.True(t, q.put(msg(next), done))
			next++
		}
		for range 3 {
			m, ok := q.get()
			require.True(t, ok)
			require.Equal(t, msg(want).Data, m.Data)
			want++
		}
		require.LessOrEqual(t, cap(q.items), 16, "storage stays within twice the bound")
	}
}

func TestRecvQueueBoundBlocksPutUntilGetOrDone(t *testing.T) {
	q := newRecvQueue(2)
	done := make(chan struct{})
	require.True(t, q.put(msg(1), done))
	require.True(t, q.put(msg(2), done))

	put := make(chan bool)
	go func() { put <- q.put(msg(3), done) }()
	select {
	case <-put:
		t.Fatal("put into a full queue returned")
	case <-time.After(50 * time.Millisecond):
	}
	m, ok := q.get()
	require.True(t, ok)
	require.Equal(t, msg(1).Data, m.Data)
	require.True(t, <-put)

	go func() { put <- q.put(msg(4), done) }()
	close(done)
	require.False(t, <-put, "a put waiting for room gives up when done closes")
	for _, want := range []int{2, 3} {
		m, ok := q.get()
		require.True(t, ok)
		require.Equal(t, msg(want).Data, m.Data)
	}
	_, ok = q.get()
	require.False(t, ok)
	q.unwait()
	require.Zero(t, q.gets)
	require.Zero(t, q.puts)
}

// Many readers and many receivers: every message arrives exactly once, and no waiter sleeps
// through a message or a free slot (the test would hang).
func TestRecvQueueManyPuttersManyGetters(t *testing.T) {
	const putters, perPutter, getters = 8, 2000, 4
	q := newRecvQueue(3)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for p := range putters {
		wg.Go(func() {
			for i := range perPutter {
				if !q.put(Message{Data: []byte{byte(p)}, Transfer: time.Duration(i)}, done) {
					t.Error("put failed")
					return
				}
			}
		})
	}
	got := make(chan Message, putters*perPutter)
	var gw sync.WaitGroup
	var mu sync.Mutex
	remaining := putters * perPutter
	finished := make(chan struct{}) // closed with the last message taken
	for range getters {
		gw.Go(func() {
			for {
				mu.Lock()
				if remaining == 0 {
					mu.Unlock()
					return
				}
				m, ok := q.get()
				if ok {
					if remaining--; remaining == 0 {
						close(finished)
					}
				}
				mu.Unlock()
				if ok {
					got <- m
					continue
				}
				select {
				case <-q.ready:
					q.unwait()
				case <-finished:
					q.unwait()
				case <-time.After(10 * time.Second):
					t.Error("a receiver slept through a message")
					return
				}
			}
		})
	}
	wg.Wait()
	gw.Wait()
	close(got)
	seen := make(map[[2]int]bool)
	for m := range got {
		k := [2]int{int(m.Data[0]), int(m.Transfer)}
		require.False(t, seen[k], "message %v delivered twice", k)
		seen[k] = true
	}
	require.Len(t, seen, putters*perPutter)
	require.Zero(t, q.gets, "every wait ended")
}
