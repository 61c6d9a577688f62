package framing

import (
	"io"
	"testing"
)

// reportThroughput adds msgs/s and MiB/s (payload bytes) to a benchmark.
func reportThroughput(b *testing.B, msgsPerOp, payload int) {
	b.Helper()
	secs := b.Elapsed().Seconds()
	if secs == 0 {
		return
	}
	msgs := float64(b.N) * float64(msgsPerOp)
	b.ReportMetric(msgs/secs, "msgs/s")
	b.ReportMetric(msgs*float64(payload)/secs/(1<<20), "MiB/s")
}

func benchmarkWriter(b *testing.B, size int) {
	w := NewWriter(io.Discard, 0)
	msg := pattern(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, 1, size)
}

// BenchmarkWriter256 frames and writes one 256 B message per operation.
func BenchmarkWriter256(b *testing.B) { benchmarkWriter(b, 256) }

// BenchmarkWriter1MiB writes 1 MiB messages, which bypass the buffer; into
// io.Discard it measures only the framing overhead, as nothing is copied.
func BenchmarkWriter1MiB(b *testing.B) { benchmarkWriter(b, 1<<20) }

// BenchmarkWriterCoalesced256 queues 64 messages of 256 B and flushes them
// in one write per operation.
func BenchmarkWriterCoalesced256(b *testing.B) {
	const batch = 64
	w := NewWriter(io.Discard, 0)
	msg := pattern(256)
	b.ReportAllocs()
	for b.Loop() {
		for range batch {
			if err := w.Queue(msg); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, batch, 256)
}

func benchmarkReader(b *testing.B, size int) {
	b.Helper()
	// Enough copies of the message to fill several read buffers, replayed
	// endlessly.
	var stream []byte
	for range max(1, 4*readBufferSize/(size+HeaderSize)) {
		stream, _ = AppendMessage(stream, pattern(size), 0)
	}
	r := NewReader(&repeatReader{data: stream}, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	reportThroughput(b, 1, size)
}

// BenchmarkReader256 parses one 256 B message per operation.
func BenchmarkReader256(b *testing.B) { benchmarkReader(b, 256) }

// BenchmarkReader1MiB parses 1 MiB messages, read directly into the payload.
func BenchmarkReader1MiB(b *testing.B) { benchmarkReader(b, 1<<20) }
