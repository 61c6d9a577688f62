package framing_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/peerwire/peerwire/framing"
)

// Messages queued on a Writer reach the stream in one write and come back
// one by one from a Reader.
func Example() {
	var stream bytes.Buffer

	w := framing.NewWriter(&stream, 0)
	for _, m := range []string{"hi", "", "abc"} {
		if err := w.Queue([]byte(m)); err != nil {
			panic(err)
		}
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", stream.Bytes())

	r := framing.NewReader(&stream, 0)
	for {
		msg, err := r.ReadMessage()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("%q\n", msg)
	}
	// Output:
	// 00 00 00 02 68 69 00 00 00 00 00 00 00 03 61 62 63
	// "hi"
	// ""
	// "abc"
}

func ExampleAppendMessage() {
	frame, err := framing.AppendMessage(nil, []byte("ping"), 0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", frame)
	// Output: 00 00 00 04 70 69 6e 67
}

func ExampleWriter_WriteMessage() {
	var stream bytes.Buffer
	w := framing.NewWriter(&stream, 0)
	if err := w.WriteMessage([]byte("hello")); err != nil {
		panic(err)
	}
	fmt.Println(stream.Len(), "bytes on the stream")
	// Output: 9 bytes on the stream
}

// A Reader rejects an oversize message from its length alone.
func ExampleTooLargeError() {
	stream := bytes.NewReader([]byte{0x00, 0x00, 0x10, 0x00}) // announces 4096 bytes
	r := framing.NewReader(stream, 1024)
	_, err := r.ReadMessage()

	var tooLarge *framing.TooLargeError
	if errors.As(err, &tooLarge) {
		fmt.Println(tooLarge.Size, tooLarge.Max)
	}
	fmt.Println(errors.Is(err, framing.ErrTooLarge))
	fmt.Println(err)
	// Output:
	// 4096 1024
	// true
	// framing: message of 4096 bytes exceeds the maximum of 1024
}

// The transfer duration of a message is measured from the moment its length
// arrived.
func ExampleReader_ReadMessageTimed() {
	stream, _ := framing.AppendMessage(nil, []byte("payload"), 0)
	r := framing.NewReader(bytes.NewReader(stream), 0)
	msg, headerAt, err := r.ReadMessageTimed()
	if err != nil {
		panic(err)
	}
	took := time.Since(headerAt)
	fmt.Printf("%s (took %v or less)\n", msg, took.Round(time.Hour))
	// Output: payload (took 0s or less)
}
