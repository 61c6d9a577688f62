package qmux

// Tests of the 0.5-RTT transport parameters (halfrtt.go): the record crypto against RFC 8448
// and against real TLS clients (crypto/tls, and OpenSSL for the suites crypto/tls cannot be
// made to pick), the wrapper's reconciliation of crypto/tls's records with R0, and the
// listener's handshake behaviour with DialEarly.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
	"github.com/stretchr/testify/require"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	require.NoError(t, err)
	return b
}

// RFC 8448 §3 (simple 1-RTT handshake, TLS_AES_128_GCM_SHA256): the server's application
// traffic secret, the keys derived from it, and the two records the server protects with
// them: a NewSessionTicket at sequence number 0 and 50 bytes of application data at 1.
const (
	rfc8448ServerAppSecret = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43"
	rfc8448ServerAppKey    = "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56"
	rfc8448ServerAppIV     = "cf 78 2b 88 dd 83 54 9a ad f1 e9 84"
	rfc8448TicketPlain     = `04 00 00 c9 00 00 00 1e fa d6 aa c5 02 00
		00 00 b2 2c 03 5d 82 93 59 ee 5f f7 af 4e c9 00 00 00 00 26 2a
		64 94 dc 48 6d 2c 8a 34 cb 33 fa 90 bf 1b 00 70 ad 3c 49 88 83
		c9 36 7c 09 a2 be 78 5a bc 55 cd 22 60 97 a3 a9 82 11 72 83 f8
		2a 03 a1 43 ef d3 ff 5d d3 6d 64 e8 61 be 7f d6 1d 28 27 db 27
		9c ce 14 50 77 d4 54 a3 66 4d 4e 6d a4 d2 9e e0 37 25 a6 a4 da
		fc d0 fc 67 d2 ae a7 05 29 51 3e 3d a2 67 7f a5 90 6c 5b 3f 7d
		8f 92 f2 28 bd a4 0d da 72 14 70 f9 fb f2 97 b5 ae a6 17 64 6f
		ac 5c 03 27 2e 97 07 27 c6 21 a7 91 41 ef 5f 7d e6 50 5e 5b fb
		c3 88 e9 33 43 69 40 93 93 4a e4 d3 57 00 08 00 2a 00 04 00 00
		04 00`
	rfc8448TicketRecord = `17 03 03 00 de 3a 6b 8f 90 41 4a 97
		d6 95 9c 34 87 68 0d e5 13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 1d
		6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a 01 59 40 25 2f 55
		71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1 70 ad 3c
		73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0
		9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13
		06 46 15 13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84
		00 25 db 2f 0a 77 f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86
		51 9d 86 cb ee ac 87 aa c3 47 d1 43 f9 60 5d 64 f6 50 db 4d 02
		3e 70 e9 52 ca 49 fe 51 37 12 1c 74 bc 26 97 68 7e 24 87 46 d6
		df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b
		f1 59 85 68 4f`
	rfc8448DataRecord = `17 03 03 00 43 2e 93 7e 11 ef 4a c7
		40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3
		0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5
		f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d`
)

func TestRecordProtectionRFC8448(t *testing.T) {
	secret := unhex(t, rfc8448ServerAppSecret)
	key, err := expandLabel(sha256.New, secret, "key", 16)
	require.NoError(t, err)
	require.Equal(t, unhex(t, rfc8448ServerAppKey), key)
	iv, err := expandLabel(sha256.New, secret, "iv", 12)
	require.NoError(t, err)
	require.Equal(t, unhex(t, rfc8448ServerAppIV), iv)

	p, err := newRecordProtection(tls.TLS_AES_128_GCM_SHA256, secret)
	require.NoError(t, err)
	ticket := unhex(t, rfc8448TicketPlain)
	require.Equal(t, unhex(t, rfc8448TicketRecord), p.seal(nil, 0, recordTypeHandshake, ticket))
	data := make([]byte, 50)
	for i := range data {
		data[i] = byte(i)
	}
	require.Equal(t, unhex(t, rfc8448DataRecord), p.seal(nil, 1, recordTypeApplicationData, data))

	typ, got, err := p.open(unhex(t, rfc8448DataRecord), 1)
	require.NoError(t, err)
	require.Equal(t, byte(recordTypeApplicationData), typ)
	require.Equal(t, data, got)
	_, _, err = p.open(unhex(t, rfc8448DataRecord), 0)
	require.Error(t, err, "opened at the wrong sequence number")
}

var tls13Suites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

func TestRecordProtectionSuites(t *testing.T) {
	for _, suite := range tls13Suites {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			secretLen := 32
			if suite == tls.TLS_AES_256_GCM_SHA384 {
				secretLen = 48
			}
			secret := make([]byte, secretLen)
			_, _ = rand.Read(secret)
			p, err := newRecordProtection(suite, secret)
			require.NoError(t, err)
			for _, seq := range []uint64{0, 1, 255, 1 << 40} {
				data := []byte(fmt.Sprintf("record %d", seq))
				rec := p.seal(nil, seq, recordTypeApplicationData, data)
				require.Equal(t, len(rec)-recordHeaderLen, int(binary.BigEndian.Uint16(rec[3:5])))
				require.Equal(t, []byte{0x17, 0x03, 0x03}, rec[:3])
				typ, got, err := p.open(rec, seq)
				require.NoError(t, err)
				require.Equal(t, byte(recordTypeApplicationData), typ)
				require.Equal(t, data, got)
				_, _, err = p.open(rec, seq+1)
				require.Error(t, err)
			}
			// Padding (which crypto/tls does not send, but a record may carry) is removed.
			inner := append([]byte("x"), recordTypeAlert, 0, 0, 0)
			n := len(inner) + p.aead.Overhead()
			hdr := []byte{0x17, 0x03, 0x03, byte(n >> 8), byte(n)}
			rec := p.aead.Seal(append([]byte(nil), hdr...), p.nonce(7), inner, hdr)
			typ, got, err := p.open(rec, 7)
			require.NoError(t, err)
			require.Equal(t, byte(recordTypeAlert), typ)
			require.Equal(t, []byte("x"), got)

			_, err = newRecordProtection(suite, secret[:secretLen-1])
			require.Error(t, err, "secret of the wrong size")
		})
	}
	_, err := newRecordProtection(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, make([]byte, 32))
	require.Error(t, err, "TLS 1.2 suite")
}

// --- the wrapper, scripted ---------------------------------------------------------------

// captureConn records what the wrapper writes to the TCP connection.
type captureConn struct {
	net.Conn // nil: only Write is used
	mu       sync.Mutex
	buf      bytes.Buffer
	writes   int
}

func (c *captureConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *captureConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := append([]byte(nil), c.buf.Bytes()...)
	c.buf.Reset()
	return b
}

// serverHello is a plaintext handshake record holding a ServerHello for suite.
func serverHello(suite uint16) []byte {
	msg := []byte{0x03, 0x03}
	msg = append(msg, make([]byte, 32)...) // random
	msg = append(msg, 32)                  // legacy_session_id_echo
	msg = append(msg, make([]byte, 32)...)
	msg = binary.BigEndian.AppendUint16(msg, suite)
	msg = append(msg, 0, 0, 0) // compression, no extensions
	body := append([]byte{handshakeTypeServerHello, 0, byte(len(msg) >> 8), byte(len(msg))}, msg...)
	return append([]byte{recordTypeHandshake, 0x03, 0x03, byte(len(body) >> 8), byte(len(body))}, body...)
}

// scripted is a wrapper fed by a test playing crypto/tls.
type scripted struct {
	t      *testing.T
	h      *halfRTTConn
	tcp    *captureConn
	prot   *recordProtection // the application keys, as crypto/tls and the client have them
	params []byte
	hooks  *testHooks
}

// newScripted plays a server handshake through the wrapper up to the flight with Finished,
// and checks that R0 followed it.
func newScripted(t *testing.T, suite uint16) *scripted {
	t.Helper()
	params := paramsRecord(localParams(testConfig()))
	tcp := &captureConn{}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true}
	hooks := &testHooks{}
	nc := withHalfRTTParams(tcp, tc, params, hooks)
	h, ok := nc.(*halfRTTConn)
	require.True(t, ok)

	secret := make([]byte, 32)
	if suite == tls.TLS_AES_256_GCM_SHA384 {
		secret = make([]byte, 48)
	}
	_, _ = rand.Read(secret)
	prot, err := newRecordProtection(suite, secret)
	require.NoError(t, err)

	// The flight: ServerHello, a CCS, "encrypted" handshake records (opaque to the wrapper).
	flight := serverHello(suite)
	flight = append(flight, 0x14, 0x03, 0x03, 0x00, 0x01, 0x01)
	flight = append(flight, 0x17, 0x03, 0x03, 0x00, 0x04, 1, 2, 3, 4)
	_, err = fmt.Fprintf(tc.KeyLogWriter, "CLIENT_TRAFFIC_SECRET_0 %x %x\n", make([]byte, 32), make([]byte, len(secret)))
	require.NoError(t, err)
	_, err = fmt.Fprintf(tc.KeyLogWriter, "%s %x %x\n", keyLogServerTraffic, make([]byte, 32), secret)
	require.NoError(t, err)
	n, err := h.Write(flight)
	require.NoError(t, err)
	require.Equal(t, len(flight), n)
	out := tcp.take()
	require.Equal(t, flight, out[:len(flight)])
	r0 := out[len(flight):]
	typ, data, err := prot.open(r0, 0)
	require.NoError(t, err, "R0 opens with the application keys at sequence number 0")
	require.Equal(t, byte(recordTypeApplicationData), typ)
	require.Equal(t, params, data)
	require.Equal(t, 1, tcp.writes, "the flight and R0 in one write")
	return &scripted{t: t, h: h, tcp: tcp, prot: prot, params: params, hooks: hooks}
}

// write is crypto/tls writing bytes.
func (s *scripted) write(b []byte) error {
	n, err := s.h.Write(b)
	if err == nil {
		require.Equal(s.t, len(b), n)
	}
	return err
}

// wire returns the records written to TCP, opened from sequence number seq on.
func (s *scripted) wire(seq uint64) (typs []byte, datas [][]byte) {
	out := s.tcp.take()
	for len(out) > 0 {
		n := recordHeaderLen + int(binary.BigEndian.Uint16(out[3:5]))
		typ, data, err := s.prot.open(out[:n], seq)
		require.NoError(s.t, err, "record at %d", seq)
		typs, datas = append(typs, typ), append(datas, data)
		out = out[n:]
		seq++
	}
	return typs, datas
}

func TestHalfRTTDropsTheParametersRecord(t *testing.T) {
	for _, suite := range tls13Suites {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			s := newScripted(t, suite)
			// The conn's first write: crypto/tls seals it at 0, as R0 was.
			require.NoError(t, s.write(s.prot.seal(nil, 0, recordTypeApplicationData, s.params)))
			require.Empty(t, s.tcp.take(), "dropped")
			// Then everything passes through untouched.
			next := s.prot.seal(nil, 1, recordTypeApplicationData, []byte("after"))
			require.NoError(t, s.write(next))
			require.Equal(t, next, s.tcp.take())
			require.Equal(t, phaseDirect, s.h.phase)
			require.Nil(t, s.h.prot, "keys forgotten")
			require.Zero(t, s.hooks.halfRTTResequenced.Load())
		})
	}
}

func TestHalfRTTResequencesAnAlert(t *testing.T) {
	s := newScripted(t, tls.TLS_AES_128_GCM_SHA256)
	// bad_certificate, sealed by crypto/tls at 0 after it refused the client.
	require.NoError(t, s.write(s.prot.seal(nil, 0, recordTypeAlert, []byte{2, 42})))
	typs, datas := s.wire(1)
	require.Equal(t, []byte{recordTypeAlert}, typs)
	require.Equal(t, [][]byte{{2, 42}}, datas)
	// Were the conn to start anyway, its parameters (now at 1) would still be dropped.
	require.NoError(t, s.write(s.prot.seal(nil, 1, recordTypeApplicationData, s.params)))
	require.Empty(t, s.tcp.take())
	require.Equal(t, phaseDirect, s.h.phase)
}

func TestHalfRTTParametersWithMoreData(t *testing.T) {
	// A conn closed before its first write sends its parameters record and the
	// CONNECTION_CLOSE's record in one write, so one TLS record: the parameters go, the rest
	// is sealed one later, and so is what follows.
	s := newScripted(t, tls.TLS_CHACHA20_POLY1305_SHA256)
	rec := s.prot.seal(nil, 0, recordTypeApplicationData, append(append([]byte(nil), s.params...), "close"...))
	// Split across writes, as a TCP write could not be, but the wrapper must not care.
	require.NoError(t, s.write(rec[:3]))
	require.NoError(t, s.write(rec[3:10]))
	require.Empty(t, s.tcp.take())
	require.NoError(t, s.write(append(rec[10:], s.prot.seal(nil, 1, recordTypeAlert, []byte{1, 0})...)))
	typs, datas := s.wire(1)
	require.Equal(t, []byte{recordTypeApplicationData, recordTypeAlert}, typs)
	require.Equal(t, [][]byte{[]byte("close"), {1, 0}}, datas)
	require.Equal(t, phaseOffset, s.h.phase)
	require.EqualValues(t, 2, s.hooks.halfRTTResequenced.Load())
}

func TestHalfRTTFailsClosed(t *testing.T) {
	for name, rec := range map[string]func(s *scripted) []byte{
		"other application data": func(s *scripted) []byte {
			return s.prot.seal(nil, 0, recordTypeApplicationData, []byte("not the parameters"))
		},
		"parameters that differ": func(s *scripted) []byte {
			p := paramsRecord(wire.TransportParameters{InitialMaxData: 1})
			return s.prot.seal(nil, 0, recordTypeApplicationData, p)
		},
		"session ticket": func(s *scripted) []byte {
			return s.prot.seal(nil, 0, recordTypeHandshake, []byte{4, 0, 0, 0})
		},
		"wrong keys": func(s *scripted) []byte {
			other, err := newRecordProtection(tls.TLS_AES_128_GCM_SHA256, make([]byte, 32))
			require.NoError(s.t, err)
			return other.seal(nil, 0, recordTypeApplicationData, s.params)
		},
		"unprotected": func(*scripted) []byte { return []byte{recordTypeAlert, 3, 3, 0, 2, 2, 42} },
		"oversized":   func(*scripted) []byte { return []byte{0x17, 3, 3, 0xff, 0xff} },
	} {
		t.Run(name, func(t *testing.T) {
			s := newScripted(t, tls.TLS_AES_128_GCM_SHA256)
			err := s.write(rec(s))
			require.ErrorIs(t, err, errHalfRTT)
			require.Empty(t, s.tcp.take(), "nothing of it reaches the wire")
			_, err = s.h.Write([]byte{0x17, 3, 3, 0, 0})
			require.ErrorIs(t, err, errHalfRTT, "and nothing after it")
			require.Equal(t, phaseFailed, s.h.phase)
		})
	}
}

func TestHalfRTTNotInjected(t *testing.T) {
	// A suite the wrapper cannot seal with: nothing is at risk, the parameters go out after
	// the handshake.
	params := paramsRecord(localParams(testConfig()))
	tcp := &captureConn{}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true}
	hooks := &testHooks{}
	h := withHalfRTTParams(tcp, tc, params, hooks).(*halfRTTConn)
	_, err := fmt.Fprintf(tc.KeyLogWriter, "%s %x %x\n", keyLogServerTraffic, make([]byte, 32), make([]byte, 32))
	require.NoError(t, err)
	flight := serverHello(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	_, err = h.Write(flight)
	require.NoError(t, err)
	require.Equal(t, flight, tcp.take(), "the flight alone")
	require.Equal(t, phaseDirect, h.phase)
	require.Zero(t, hooks.halfRTTInjected.Load())
	rec := []byte{0x17, 3, 3, 0, 1, 7}
	_, err = h.Write(rec)
	require.NoError(t, err)
	require.Equal(t, rec, tcp.take(), "later writes pass through")

	// A config that could send session tickets, or negotiate TLS 1.2, gets no wrapper.
	for _, tc := range []*tls.Config{
		{MinVersion: tls.VersionTLS13},
		{MinVersion: tls.VersionTLS12, SessionTicketsDisabled: true},
	} {
		require.Same(t, net.Conn(tcp), withHalfRTTParams(tcp, tc, params, nil))
		require.Nil(t, tc.KeyLogWriter)
	}
}

// TestHalfRTTFailsClosedOnTheFlight: R0 goes only into the write that carries the whole
// flight ServerHello..Finished, with the secret logged before it. Any other order (the
// secret logged after that write, as a crypto/tls that logs after flushing would; a flight
// split across writes; a write without the ServerHello) fails the connection, and nothing
// is injected: no record is ever sealed at a sequence number crypto/tls will use.
func TestHalfRTTFailsClosedOnTheFlight(t *testing.T) {
	hello := serverHello(tls.TLS_AES_128_GCM_SHA256)
	encrypted := []byte{0x17, 3, 3, 0, 4, 1, 2, 3, 4} // opaque handshake records
	for name, script := range map[string][]string{
		"secret logged after the flight":  {"write hello+encrypted", "log"},
		"flight split, secret before":     {"log", "write hello+partial", "write rest"},
		"flight split, secret in between": {"write hello", "log", "write encrypted"},
		"secret logged, no ServerHello":   {"log", "write encrypted"},
	} {
		t.Run(name, func(t *testing.T) {
			params := paramsRecord(localParams(testConfig()))
			tcp := &captureConn{}
			tc := &tls.Config{MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true}
			hooks := &testHooks{}
			h := withHalfRTTParams(tcp, tc, params, hooks).(*halfRTTConn)
			var failed error
			for _, step := range script {
				var err error
				switch step {
				case "log":
					_, err = fmt.Fprintf(tc.KeyLogWriter, "%s %x %x\n", keyLogServerTraffic, make([]byte, 32), make([]byte, 32))
				case "write hello+encrypted":
					_, err = h.Write(append(append([]byte(nil), hello...), encrypted...))
				case "write hello+partial":
					_, err = h.Write(append(append([]byte(nil), hello...), encrypted[:7]...))
				case "write rest":
					_, err = h.Write(encrypted[7:])
				case "write hello":
					_, err = h.Write(hello)
				case "write encrypted":
					_, err = h.Write(encrypted)
				}
				if err != nil {
					failed = err
					break
				}
			}
			require.ErrorIs(t, failed, errHalfRTT)
			require.Equal(t, phaseFailed, h.phase)
			require.Zero(t, hooks.halfRTTInjected.Load(), "nothing injected")
			require.Nil(t, h.prot, "R0 never sealed")
			// Whatever crypto/tls writes next (its alert, the conn's records) fails too.
			_, err := h.Write([]byte{0x17, 3, 3, 0, 1, 0})
			require.ErrorIs(t, err, errHalfRTT)
			for _, b := range bytes.SplitAfter(tcp.take(), nil) {
				require.NotContains(t, string(b), string(params))
			}
		})
	}
}

// TestHalfRTTFailsClosedOverTLS: with a real crypto/tls server whose key log reaches the
// wrapper only after the flight went out (as a crypto/tls that logs after flushing would
// have it), nothing is sent at 0.5-RTT, the late secret is refused, and the server's next
// write fails instead of carrying a record at a reused sequence number.
func TestHalfRTTFailsClosedOverTLS(t *testing.T) {
	cc, sc := halfRTTConfigs(t)
	ours, theirs := net.Pipe()
	tcfg := certs.ServerConfig(sc.Credential, sc.Trust, []string{ALPN("test")}).Clone()
	hooks := &testHooks{}
	h := withHalfRTTParams(ours, tcfg, halfRTTRecord(sc), hooks).(*halfRTTConn)
	logged := tcfg.KeyLogWriter
	var held [][]byte // every key log line, held back until the handshake is over
	tcfg.KeyLogWriter = writerFunc(func(p []byte) (int, error) {
		held = append(held, append([]byte(nil), p...))
		return len(p), nil
	})
	server := tls.Server(h, tcfg)
	client := tls.Client(theirs, certs.ClientConfig(cc.Credential, cc.Trust, []string{ALPN("test")}))
	clientRead := make(chan error, 1)
	go func() {
		err := client.Handshake()
		if err == nil {
			_, err = client.Read(make([]byte, 1)) // nothing may arrive
		}
		clientRead <- err
	}()
	require.NoError(t, server.Handshake())
	var err error
	for _, line := range held {
		if _, err = logged.Write(line); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, errHalfRTT, "the late secret is refused")
	_, err = server.Write(halfRTTRecord(sc))
	require.ErrorIs(t, err, errHalfRTT, "and the connection fails")
	_ = ours.Close()
	require.ErrorIs(t, <-clientRead, io.EOF, "the client received no application data")
	require.Zero(t, hooks.halfRTTInjected.Load())
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestHalfRTTKeyLogPassesLinesOn(t *testing.T) {
	var seen bytes.Buffer
	tc := &tls.Config{MinVersion: tls.VersionTLS13, SessionTicketsDisabled: true, KeyLogWriter: &seen}
	h := withHalfRTTParams(&captureConn{}, tc, nil, nil).(*halfRTTConn)
	line := fmt.Sprintf("%s %x %x\n", keyLogServerTraffic, make([]byte, 32), []byte("0123456789abcdef0123456789abcdef"))
	_, err := io.WriteString(tc.KeyLogWriter, line)
	require.NoError(t, err)
	require.Equal(t, line, seen.String())
	require.Equal(t, []byte("0123456789abcdef0123456789abcdef"), h.secret)
}

// TestHalfRTTRecordIsTheConnsFirstWrite holds R0 and the conn together: a listener's conn
// with DialEarly writes exactly halfRTTRecord first, in a write of its own, for any
// configuration.
func TestHalfRTTRecordIsTheConnsFirstWrite(t *testing.T) {
	for name, cfg := range map[string]*session.Config{
		"defaults":    {DialEarly: true},
		"libp2p-like": {DialEarly: true, MaxIncomingStreams: 256, MaxIncomingUniStreams: -1, IdleTimeout: time.Minute},
		"no idle":     {DialEarly: true, IdleTimeout: -1, KeepAlivePeriod: -1, MaxIncomingStreams: 3},
		"small windows": {DialEarly: true, MaxStreamReceiveWindow: 1000, MaxConnectionReceiveWindow: 5000,
			MaxIncomingUniStreams: 1 << 40},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, nc := startConn(t, cfg, false)
				require.Equal(t, localParams(cfg), c.local)
				// The peer's parameters and a ping could be packed with ours in one record;
				// they must not be.
				var tp []byte
				tp = appendFrames(tp, &wire.TransportParametersFrame{Params: peerParams()}, &wire.PingFrame{Sequence: 1})
				rec, start := wire.BeginRecord(nil, 2)
				rec = wire.EndRecord(append(rec, tp...), start)
				go func() { _, _ = nc.Write(rec) }()
				buf := make([]byte, 4096)
				n, err := nc.Read(buf) // net.Pipe: at most one write per read
				require.NoError(t, err)
				require.Equal(t, halfRTTRecord(cfg), buf[:n])
			})
		})
	}
	// Closed before its first write: the parameters' record, then the CONNECTION_CLOSE's.
	synctest.Test(t, func(t *testing.T) {
		cfg := &session.Config{DialEarly: true}
		c, nc := startConn(t, cfg, false)
		require.NoError(t, c.CloseWithError(5, "early"))
		// The two records may come in one write or two (the writer may have started on the
		// parameters before the close): read all the conn sends until it closes.
		buf, err := io.ReadAll(nc)
		require.NoError(t, err)
		want := halfRTTRecord(cfg)
		require.Equal(t, want, buf[:len(want)])
		payload, err := wire.NewRecordReader(bytes.NewReader(buf[len(want):]), 0).Next()
		require.NoError(t, err)
		var p wire.Parser
		f, _, err := p.ParseNext(payload)
		require.NoError(t, err)
		require.Equal(t, &wire.ConnectionCloseFrame{IsApplication: true, ErrorCode: 5, Reason: []byte("early")}, f)
	})
	// A dialer, or a listener without DialEarly, sends nothing at 0.5-RTT.
	require.Nil(t, halfRTTRecord(&session.Config{}))
	require.False(t, halfRTT(true, &session.Config{DialEarly: true}))
}

// --- over TCP and TLS ----------------------------------------------------------------------

// heldConn passes its first write (the ClientHello) and holds the following ones (the
// client's Certificate..Finished) until release: the client's handshake completes while the
// listener's cannot.
type heldConn struct {
	net.Conn
	mu       sync.Mutex
	writes   int
	held     []byte
	released bool
}

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.writes > 1 && !c.released {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *heldConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	_, err := c.Conn.Write(c.held)
	return err
}

// halfRTTConfigs are tlsConfigs with DialEarly on both sides and bidirectional streams.
func halfRTTConfigs(t testing.TB) (client, server *session.Config) {
	cc, sc := tlsConfigs(t)
	cc.DialEarly, sc.DialEarly = true, true
	cc.MaxIncomingStreams, sc.MaxIncomingStreams = 8, 8
	return cc, sc
}

type acceptResult struct {
	c   session.Conn
	err error
}

// acceptOne accepts one attempt on ln in the background.
func acceptOne(t *testing.T, ln session.Listener) <-chan acceptResult {
	res := make(chan acceptResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in, err := ln.Accept(ctx)
		if err != nil {
			res <- acceptResult{err: err}
			return
		}
		c, err := in.Accept(ctx)
		if c != nil {
			t.Cleanup(func() { _ = c.CloseWithError(0, "") })
		}
		res <- acceptResult{c, err}
	}()
	return res
}

// stdClient runs a standard crypto/tls client handshake against a QMux listener, holding
// back the client's second flight, and returns the client and a function that sends it.
func stdClient(t *testing.T, addr string, cc *session.Config) (*tls.Conn, func()) {
	t.Helper()
	tcp, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	held := &heldConn{Conn: tcp}
	tc := tls.Client(held, certs.ClientConfig(cc.Credential, cc.Trust, []string{ALPN("test")}))
	t.Cleanup(func() { _ = tc.Close() })
	require.NoError(t, tc.SetDeadline(time.Now().Add(10*time.Second)))
	require.NoError(t, tc.Handshake())
	return tc, func() { require.NoError(t, held.release()) }
}

// TestHalfRTTStandardClientReadsParameters: a crypto/tls client reads the listener's
// parameters right after its own handshake, while the listener's handshake still waits for
// the client's Finished; the stream then continues at the right sequence numbers, without
// the parameters a second time. PEERWIRE_HALFRTT_SUITE names the suite the test expects
// (TestHalfRTTChaCha20 sets it with GODEBUG=cpu.aes=off).
func TestHalfRTTStandardClientReadsParameters(t *testing.T) {
	cc, sc := halfRTTConfigs(t)
	_, ln := listen(t, sc)
	accepted := acceptOne(t, ln)
	tc, release := stdClient(t, ln.Addr().String(), cc)
	if want := os.Getenv("PEERWIRE_HALFRTT_SUITE"); want != "" {
		require.Equal(t, want, tls.CipherSuiteName(tc.ConnectionState().CipherSuite))
	}
	t.Logf("cipher suite %s", tls.CipherSuiteName(tc.ConnectionState().CipherSuite))

	want := halfRTTRecord(sc)
	got := make([]byte, len(want))
	_, err := io.ReadFull(tc, got)
	require.NoError(t, err, "the client reads the parameters record")
	require.Equal(t, want, got)
	select {
	case r := <-accepted:
		t.Fatalf("the listener's handshake completed without the client's Finished: %v", r.err)
	default:
	}

	release()
	_, err = tc.Write(paramsRecord(localParams(cc)))
	require.NoError(t, err)
	r := <-accepted
	require.NoError(t, r.err)
	h := r.c.(*conn).nc.(*tls.Conn).NetConn().(*halfRTTConn)
	hooks := h.hooks

	// The listener opens a stream: the next thing the client reads is its data.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.c.OpenStream(ctx)
	require.NoError(t, err)
	_, err = s.Write([]byte("hello"))
	require.NoError(t, err)
	rr := wire.NewRecordReader(tc, wire.DefaultMaxRecordSize)
	var p wire.Parser
	for found := false; !found; {
		rec, err := rr.Next()
		require.NoError(t, err)
		for len(rec) > 0 {
			f, n, err := p.ParseNext(rec)
			require.NoError(t, err)
			rec = rec[n:]
			_, isParams := f.(*wire.TransportParametersFrame)
			require.False(t, isParams, "the parameters came twice")
			if sf, ok := f.(*wire.StreamFrame); ok {
				require.Equal(t, "hello", string(sf.Data))
				found = true
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	require.EqualValues(t, 1, hooks.halfRTTInjected.Load())
	require.Equal(t, phaseDirect, h.phase)
	require.Zero(t, hooks.halfRTTResequenced.Load())
}

// TestHalfRTTChaCha20 runs TestHalfRTTStandardClientReadsParameters in a process in which
// crypto/tls believes the CPU has no AES instructions, so that both ends prefer
// TLS_CHACHA20_POLY1305_SHA256.
func TestHalfRTTChaCha20(t *testing.T) {
	if os.Getenv("PEERWIRE_HALFRTT_SUITE") != "" {
		t.Skip("in the child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHalfRTTStandardClientReadsParameters$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=cpu.aes=off", "PEERWIRE_HALFRTT_SUITE=TLS_CHACHA20_POLY1305_SHA256")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "cipher suite TLS_CHACHA20_POLY1305_SHA256")
	require.Contains(t, string(out), "--- PASS: TestHalfRTTStandardClientReadsParameters")
}

// TestHalfRTTOpenSSL has OpenSSL's client, forced to each TLS 1.3 suite, read the
// parameters and what the listener sends after them (CONNECTION_CLOSE): AES-256-GCM is a
// suite crypto/tls never picks against its own client.
func TestHalfRTTOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	cc, sc := halfRTTConfigs(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := cc.Credential.TLSCertificate()
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600))
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))

	for _, suite := range tls13Suites {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			_, ln := listen(t, sc)
			accepted := acceptOne(t, ln)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", ln.Addr().String(),
				"-tls1_3", "-ciphersuites", tls.CipherSuiteName(suite), "-alpn", ALPN("test"),
				"-cert", certFile, "-key", keyFile, "-quiet", "-nocommands")
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			require.NoError(t, cmd.Start())
			// Our parameters as the client's, then keep stdin open until the listener closes.
			_, err = stdin.Write(paramsRecord(localParams(cc)))
			require.NoError(t, err)
			r := <-accepted
			if r.err != nil {
				cancel()
				_ = cmd.Wait() // before reading stderr
				t.Fatalf("accept: %v; openssl: %s", r.err, stderr.String())
			}
			require.Equal(t, tls.CipherSuiteName(suite), tls.CipherSuiteName(r.c.State().TLS.CipherSuite))
			require.NoError(t, r.c.CloseWithError(7, "bye"))
			_ = cmd.Wait()
			_ = stdin.Close()

			out := stdout.Bytes()
			want := halfRTTRecord(sc)
			require.True(t, bytes.HasPrefix(out, want), "openssl read %x, stderr: %s", out, stderr.String())
			payload, err := wire.NewRecordReader(bytes.NewReader(out[len(want):]), 0).Next()
			require.NoError(t, err, "a record after the parameters: %x, stderr: %s", out, stderr.String())
			var p wire.Parser
			f, _, err := p.ParseNext(payload)
			require.NoError(t, err)
			cf, ok := f.(*wire.ConnectionCloseFrame)
			require.True(t, ok, "frame %T", f)
			require.Equal(t, uint64(7), cf.ErrorCode)
		})
	}
}

// TestHalfRTTRefusedClientSeesAlert: the listener refuses the client's certificate after it
// sent its parameters; crypto/tls seals the alert at sequence number 0, the wrapper at 1,
// and the client reads both.
func TestHalfRTTRefusedClientSeesAlert(t *testing.T) {
	cc, sc := halfRTTConfigs(t)
	sc.Trust = &certs.TrustPolicy{Hashes: []identity.CertHash{credential(t).Hash()}}
	_, ln := listen(t, sc)
	accepted := acceptOne(t, ln)
	tc, release := stdClient(t, ln.Addr().String(), cc)
	want := halfRTTRecord(sc)
	got := make([]byte, len(want))
	_, err := io.ReadFull(tc, got)
	require.NoError(t, err)
	require.Equal(t, want, got)
	release()
	_, err = tc.Read(make([]byte, 1))
	alert, ok := certs.PeerAlert(err)
	require.True(t, ok, "not an alert: %v", err)
	require.Equal(t, uint8(42), alert, "bad_certificate")
	var rej *certs.RejectError
	require.ErrorAs(t, (<-accepted).err, &rej)
	require.Equal(t, certs.ReasonHashNotTrusted, rej.Reason)
}

// TestHalfRTTDialerRefused: a QMux dialer refused by a listener with DialEarly either fails
// to dial with *certs.RejectedByPeerError (when the alert overtook its wait for the
// parameters) or sees its connection end with the listener's certificate alert.
func TestHalfRTTDialerRefused(t *testing.T) {
	cc, sc := halfRTTConfigs(t)
	sc.Trust = &certs.TrustPolicy{Hashes: []identity.CertHash{credential(t).Hash()}}
	core, ln := listen(t, sc)
	accepted := acceptOne(t, ln)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := core.Dial(ctx, ln.Addr().String(), cc)
	if err == nil {
		select {
		case <-c.Context().Done():
		case <-ctx.Done():
			t.Fatal("the refused connection stayed open")
		}
		err = context.Cause(c.Context())
		var ce *session.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, session.ClosedByNetwork, ce.Kind)
		alert, ok := certs.PeerAlert(err)
		require.True(t, ok, "not an alert: %v", err)
		require.True(t, certs.IsCertificateAlert(alert), "alert %d", alert)
		var rp *certs.RejectedByPeerError
		require.ErrorAs(t, err, &rp, "the cause after Dial returned")
		require.Equal(t, alert, rp.Alert)
	} else {
		var rp *certs.RejectedByPeerError
		require.ErrorAs(t, err, &rp)
		require.Equal(t, uint8(42), rp.Alert)
	}
	var rej *certs.RejectError
	require.ErrorAs(t, (<-accepted).err, &rej)
}

// TestHalfRTTDial: QMux on both ends with DialEarly: streams work both ways, the listener's
// conn went through the wrapper, and Dial did not wait for the listener's handshake.
func TestHalfRTTDial(t *testing.T) {
	cc, sc := halfRTTConfigs(t)
	client, server := connect(t, cc, sc)
	h := server.(*conn).nc.(*tls.Conn).NetConn().(*halfRTTConn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, pair := range [][2]session.Conn{{client, server}, {server, client}} {
		errs := make(chan error, 1)
		go func() {
			s, err := pair[1].AcceptStream(ctx)
			if err == nil {
				_, err = io.Copy(s, s)
				err = errors.Join(err, s.Close())
			}
			errs <- err
		}()
		require.NoError(t, echoStream(ctx, pair[0], uint64(i), 1<<20))
		require.NoError(t, <-errs)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	require.EqualValues(t, 1, h.hooks.halfRTTInjected.Load())
	require.Equal(t, phaseDirect, h.phase)
}

// TestHalfRTTHandshakeFailures: with DialEarly the listener keeps its refusals: no common
// ALPN, Reject, and the handshake timer.
func TestHalfRTTHandshakeFailures(t *testing.T) {
	t.Run("ALPN", func(t *testing.T) {
		cc, sc := halfRTTConfigs(t)
		cc.ALPN = []string{"other"}
		core, ln := listen(t, sc)
		accepted := acceptOne(t, ln)
		_, err := core.Dial(context.Background(), ln.Addr().String(), cc)
		var ae *session.ALPNError
		require.ErrorAs(t, err, &ae)
		require.Error(t, (<-accepted).err)
	})
	t.Run("Reject", func(t *testing.T) {
		cc, sc := halfRTTConfigs(t)
		core, ln := listen(t, sc)
		go func() {
			if in, err := ln.Accept(context.Background()); err == nil {
				_ = in.Reject()
			}
		}()
		_, err := core.Dial(context.Background(), ln.Addr().String(), cc)
		require.ErrorIs(t, err, session.ErrRejected)
	})
	t.Run("timeout", func(t *testing.T) {
		cc, sc := halfRTTConfigs(t)
		sc.HandshakeTimeout = 300 * time.Millisecond
		core, ln := listen(t, sc) // nobody accepts
		_, err := core.Dial(context.Background(), ln.Addr().String(), cc)
		require.ErrorIs(t, err, session.ErrRejected)
	})
}

// FuzzServerHelloSuite: the flight scanner takes any bytes.
func FuzzServerHelloSuite(f *testing.F) {
	f.Add(serverHello(tls.TLS_AES_128_GCM_SHA256))
	f.Add(append(serverHello(tls.TLS_CHACHA20_POLY1305_SHA256), 0x17, 3, 3, 0, 2, 1))
	f.Add([]byte{0x16, 3, 3, 0, 4, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h := &halfRTTConn{}
		h.scanHandshake(b)
		if len(b) > recordHeaderLen {
			_, _ = serverHelloSuite(b[recordHeaderLen:])
		}
	})
}

// FuzzHalfRTTReconcile: whatever crypto/tls wrote after R0, the wrapper forwards records
// that open at consecutive sequence numbers from 1, or fails closed; it never panics.
func FuzzHalfRTTReconcile(f *testing.F) {
	f.Add([]byte{0x17, 3, 3, 0, 2, 1, 2}, uint8(3))
	f.Add([]byte{0x15, 3, 3, 0, 2, 2, 42}, uint8(0))
	f.Add([]byte{0x17, 3, 3, 0xff, 0xff, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		s := newScripted(t, tls.TLS_AES_128_GCM_SHA256)
		// Seed the stream with a real alert, so that the fuzzer starts from a valid prefix.
		in := append(s.prot.seal(nil, 0, recordTypeAlert, []byte{2, 42}), b...)
		cut := min(int(split), len(in))
		var err error
		for _, part := range [][]byte{in[:cut], in[cut:]} {
			if err == nil && len(part) > 0 {
				_, err = s.h.Write(part)
			}
		}
		if err != nil {
			require.ErrorIs(t, err, errHalfRTT)
		}
		s.wire(1) // opens every forwarded record, in order
	})
}
