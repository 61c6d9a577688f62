package streampool

// ReadersWaiting reports how many stream readers wait for room in the receive queue: the
// queue is full and they hold a message.
func (p *Pool) ReadersWaiting() int {
	p.queue.mu.Lock()
	defer p.queue.mu.Unlock()
	return p.queue.puts
}

// RecvsWaiting reports how many Recvs wait for a message.
func (p *Pool) RecvsWaiting() int {
	p.queue.mu.Lock()
	defer p.queue.mu.Unlock()
	return p.queue.gets
}

// SendsBatched reports how many Sends wait with their message in a sender's pending batch
// (the next write), over all send streams.
func (p *Pool) SendsBatched() int {
	n := 0
	for _, s := range p.senders {
		s.mu.Lock()
		n += s.waiters
		s.mu.Unlock()
	}
	return n
}

// Writing reports whether a write is in progress on any send stream.
func (p *Pool) Writing() bool {
	for _, s := range p.senders {
		s.mu.Lock()
		flushing := s.flushing
		s.mu.Unlock()
		if flushing {
			return true
		}
	}
	return false
}
