package wire

import (
	"bytes"
	"fmt"
	"testing"
)

var benchSizes = []int{64, 1024, DefaultMaxRecordSize - 16}

func BenchmarkParseStreamFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			enc := (&StreamFrame{StreamID: 4, Offset: 1 << 20, Data: make([]byte, size), HasLength: true}).Append(nil)
			p := &Parser{}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := p.ParseNext(enc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

func BenchmarkAppendStreamFrame(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := &StreamFrame{StreamID: 4, Offset: 1 << 20, Data: make([]byte, size), HasLength: true}
			buf := make([]byte, 0, 2+f.Length())
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rec, start := BeginRecord(buf[:0], 2)
				_ = EndRecord(f.Append(rec), start)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

func BenchmarkRecordReader(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			f := &StreamFrame{StreamID: 4, Offset: 1 << 20, Data: make([]byte, size)}
			rec, start := BeginRecord(nil, 2)
			rec = EndRecord(f.Append(rec), start)
			rr := NewRecordReader(&repeatReader{data: bytes.Clone(rec)}, 0)
			p := &Parser{}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				payload, err := rr.Next()
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := p.ParseNext(payload); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
