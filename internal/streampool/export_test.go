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
