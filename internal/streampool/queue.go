package streampool

import "sync"

// recvQueue is the bounded queue between the stream readers and Recv. Unlike a buffered
// channel, it holds no storage for its bound while it is not full: an idle connection's
// queue is a few hundred bytes instead of a slot per message (4 KiB at the default bound),
// and the storage a burst needed is dropped once the queue drains.
//
// Waiters are woken by one-token channels, signalled only when someone waits (an uncontended
// message costs a lock on each side and no channel operation); a woken waiter that leaves
// more behind (messages for other Recvs, room for other readers) passes the token on.
type recvQueue struct {
	max int

	mu    sync.Mutex
	items []Message // queued messages from head on
	head  int
	small [4]Message // storage while few messages wait
	gets  int        // Recvs waiting for ready
	puts  int        // readers waiting for room

	ready chan struct{} // a message may be waiting
	room  chan struct{} // a slot may be free
}

func newRecvQueue(max int) *recvQueue {
	return &recvQueue{max: max, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// put appends m, waiting while the queue is full. It returns false, leaving m out, when done
// closes first.
func (q *recvQueue) put(m Message, done <-chan struct{}) bool {
	q.mu.Lock()
	for len(q.items)-q.head >= q.max {
		q.puts++
		q.mu.Unlock()
		var ok bool
		select {
		case <-q.room:
			ok = true
		case <-done:
		}
		q.mu.Lock()
		q.puts--
		if !ok {
			q.mu.Unlock()
			return false
		}
	}
	q.appendLocked(m)
	wakeGet := q.gets > 0
	wakePut := q.puts > 0 && len(q.items)-q.head < q.max
	q.mu.Unlock()
	if wakeGet {
		signal(q.ready)
	}
	if wakePut {
		signal(q.room)
	}
	return true
}

// appendLocked adds m at the tail; the caller checked there is room.
func (q *recvQueue) appendLocked(m Message) {
	if q.items == nil {
		q.items = q.small[:0]
	} else if len(q.items) == cap(q.items) && q.head > 0 {
		// Full storage with consumed slots in front: reuse them rather than grow.
		k := copy(q.items, q.items[q.head:])
		clear(q.items[k:])
		q.items, q.head = q.items[:k], 0
	}
	q.items = append(q.items, m)
}

// get removes the oldest message. When there is none it returns false and counts the caller
// as waiting on q.ready until it calls unwait.
func (q *recvQueue) get() (Message, bool) {
	q.mu.Lock()
	if q.head == len(q.items) {
		q.gets++
		q.mu.Unlock()
		return Message{}, false
	}
	return q.takeLocked()
}

// takeLocked removes the oldest message, which exists, and unlocks q.
func (q *recvQueue) takeLocked() (Message, bool) {
	m := q.items[q.head]
	q.items[q.head] = Message{}
	q.head++
	more := q.head < len(q.items)
	if !more {
		q.items, q.head = nil, 0 // drop a burst's storage
	}
	wakeGet := more && q.gets > 0
	wakePut := q.puts > 0
	q.mu.Unlock()
	if wakePut {
		signal(q.room)
	}
	if wakeGet {
		signal(q.ready)
	}
	return m, true
}

// unwait ends the wait a failed get started.
func (q *recvQueue) unwait() {
	q.mu.Lock()
	q.gets--
	q.mu.Unlock()
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
