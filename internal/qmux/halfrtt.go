package qmux

// A listener's QX_TRANSPORT_PARAMETERS at 0.5-RTT.
//
// A QMux dialer may not open a stream before the listener's QX_TRANSPORT_PARAMETERS arrive,
// and crypto/tls lets a server write application data only once it has read the client's
// Finished: the parameters would reach the dialer one round trip after its own handshake.
// draft-ietf-quic-qmux-02 allows a server to send them "immediately after the server's
// Finished message" (TLS 1.3 0.5-RTT data, RFC 8446 §4.4.4), and crypto/tls has no API for
// that. So a listener that wants it (session.Config.DialEarly) puts halfRTTConn between its
// tls.Conn and the TCP connection:
//
//  1. A per-connection Config.KeyLogWriter captures server_application_traffic_secret_0,
//     which crypto/tls logs in sendServerFinished, after queueing its Finished and before
//     flushing the flight ServerHello..Finished in one write; the ServerHello the wrapper
//     sees in that write gives the cipher suite.
//  2. That write, and only that one, gets one application_data record of ours appended, R0,
//     sealed with the application keys at sequence number 0, carrying exactly the record
//     the conn will write first: our QX_TRANSPORT_PARAMETERS alone (paramsRecord).
//  3. crypto/tls does not know about R0: its counter is one behind the wire. The conn's first
//     write, after the handshake, is that same record; sealed with the same key, nonce,
//     plaintext and header it is byte-identical to R0, and the wrapper drops it. From then on
//     both counters agree and writes pass straight through. A record crypto/tls seals before
//     that (an alert refusing the client's certificate, after the flight but before the conn
//     exists) is decrypted and sealed again one sequence number later, so the dialer still
//     reads the alert.
//
// The wrapper fails closed wherever crypto/tls does not behave as assumed: the connection
// ends with errHalfRTT, and no record is ever sealed at a sequence number crypto/tls uses
// too. The secret logged in a write that does not carry the ServerHello and whole records
// (a flight split across writes), or after the write that carried the ServerHello (a
// crypto/tls that logs after flushing), fails the handshake, R0 never sealed. After R0, a
// record that cannot be reconciled (a first application record that is not our parameters,
// a post-handshake handshake message such as a session ticket or a key update) fails the
// write. Only a cipher suite the wrapper does not know leaves R0 out with nothing at risk:
// the parameters then go out after the handshake, as without DialEarly.
//
// The parameters are not secret; like any 0.5-RTT data they go to a client that is not
// authenticated yet, and they are the only thing sent early.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/peerwire/peerwire/internal/qmux/wire"
	"github.com/peerwire/peerwire/internal/session"
)

// TLS 1.3 record layer (RFC 8446 §5).
const (
	recordHeaderLen           = 5    // type (1) + legacy_record_version (2) + length (2)
	recordTypeAlert           = 0x15 // inner content type of an alert
	recordTypeHandshake       = 0x16 // handshake; the outer type of a plaintext ServerHello
	recordTypeApplicationData = 0x17 // application_data; the outer type of every encrypted record
	maxCiphertext             = 1<<14 + 256
	handshakeTypeServerHello  = 0x02
	// keyLogServerTraffic is the NSS key log label of server_application_traffic_secret_0.
	keyLogServerTraffic = "SERVER_TRAFFIC_SECRET_0"
)

// errHalfRTT reports TLS writes that the 0.5-RTT parameters cannot be reconciled with.
var errHalfRTT = errors.New("qmux: TLS records after the 0.5-RTT transport parameters do not match them")

// paramsRecord is the QMux record fillLocked writes first: QX_TRANSPORT_PARAMETERS alone,
// with a 2-byte Size.
func paramsRecord(p wire.TransportParameters) []byte {
	buf, start := wire.BeginRecord(nil, 2)
	buf = (&wire.TransportParametersFrame{Params: p}).Append(buf)
	return wire.EndRecord(buf, start)
}

// halfRTT reports whether a conn sends its transport parameters at 0.5-RTT: a listener whose
// config has DialEarly. Its first record must then carry the parameters alone (fillLocked).
func halfRTT(client bool, cfg *session.Config) bool { return !client && cfg.DialEarly }

// withHalfRTTParams returns the net.Conn a listener's tls.Server should use to send record
// (the conn's first record, paramsRecord) at 0.5-RTT, and sets tc.KeyLogWriter for it. tc
// must be the connection's own clone of the server config. It returns tcp itself, and
// leaves tc alone, when tc could resume sessions (a ticket sent with the flight would take
// R0's sequence number) or allows a TLS version other than 1.3. hooks is nil in production.
func withHalfRTTParams(tcp net.Conn, tc *tls.Config, record []byte, hooks *testHooks) net.Conn {
	if !tc.SessionTicketsDisabled || tc.MinVersion != tls.VersionTLS13 {
		return tcp
	}
	h := &halfRTTConn{Conn: tcp, params: record, hooks: hooks}
	tc.KeyLogWriter = &halfRTTKeyLog{h: h, next: tc.KeyLogWriter}
	return h
}

// halfRTTKeyLog receives crypto/tls's key log lines for one connection and hands
// server_application_traffic_secret_0 to the wrapper; it passes every line on to the
// config's own KeyLogWriter, if there was one.
type halfRTTKeyLog struct {
	h    *halfRTTConn
	next io.Writer
}

func (k *halfRTTKeyLog) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) == 3 && string(f[0]) == keyLogServerTraffic {
		if secret, err := hex.DecodeString(string(f[2])); err == nil {
			if err := k.h.setSecret(secret); err != nil {
				return 0, err // crypto/tls aborts the handshake
			}
		}
	}
	if k.next != nil {
		return k.next.Write(line)
	}
	return len(line), nil
}

type halfRTTPhase uint8

const (
	phaseHandshake halfRTTPhase = iota // watching the server's flights for ServerHello and Finished
	phaseOffset                        // R0 sent: crypto/tls's sequence number is one behind the wire's
	phaseDirect                        // nothing (more) to reconcile: writes pass through
	phaseFailed                        // a write could not be reconciled; every write fails
)

// halfRTTConn is the TCP connection of a listener's tls.Conn, sending the conn's
// transport parameters at 0.5-RTT (see the top of this file). crypto/tls serialises its
// writes; mu guards against anything else.
type halfRTTConn struct {
	net.Conn
	params []byte     // R0's plaintext: the conn's first record
	hooks  *testHooks // nil in production

	mu        sync.Mutex
	phase     halfRTTPhase
	suite     uint16 // from the ServerHello
	helloSent bool   // a write carrying the ServerHello went out without R0
	secret    []byte // server_application_traffic_secret_0
	pending   []byte // an incomplete record, completed by the next Write
	prot      *recordProtection
	r0        []byte
	seq       uint64 // crypto/tls's sequence number of its next record, while offset
	dropped   bool   // crypto/tls's copy of the parameters was removed
	err       error
}

// setSecret takes the secret crypto/tls logged. Logged after the write that carried the
// ServerHello, it is too late for R0 to follow the Finished in that write: the handshake
// fails.
func (h *halfRTTConn) setSecret(secret []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.phase == phaseFailed:
		return h.err
	case h.phase != phaseHandshake || h.secret != nil:
		return nil
	case h.helloSent:
		return h.fail("the application secret was logged after the ServerHello's flight was written")
	}
	h.secret = secret
	return nil
}

// CloseWrite half-closes the TCP connection (conn.shutdown reaches it through
// tls.Conn.NetConn).
func (h *halfRTTConn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (h *halfRTTConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.phase {
	case phaseDirect:
		return h.Conn.Write(p)
	case phaseFailed:
		return 0, h.err
	case phaseOffset:
		return h.writeOffset(p)
	}
	hello := h.scanHandshake(p)
	if h.secret == nil {
		if hello {
			h.helloSent = true // a secret logged from now on fails the handshake
		}
		return h.Conn.Write(p)
	}
	// crypto/tls logged the application secret while it built the flight that ends with its
	// Finished: R0 follows it, in the same write, or not at all.
	if !hello || len(h.pending) > 0 {
		return 0, h.fail("the application secret was logged, but this write does not carry the whole ServerHello..Finished flight")
	}
	r0, err := h.sealR0()
	if err != nil {
		h.direct() // an unknown suite: the parameters go out after the handshake
		return h.Conn.Write(p)
	}
	h.r0, h.phase = r0, phaseOffset
	if h.hooks != nil {
		h.hooks.halfRTTInjected.Add(1)
	}
	n, err := h.Conn.Write(append(append(make([]byte, 0, len(p)+len(r0)), p...), r0...))
	return min(n, len(p)), err
}

// scanHandshake follows the records of the server's flights (plaintext ServerHello, then
// encrypted records), takes the cipher suite from the ServerHello, and reports whether p
// completed a ServerHello record (a HelloRetryRequest is not one).
func (h *halfRTTConn) scanHandshake(p []byte) (hello bool) {
	h.pending = append(h.pending, p...)
	rest := h.pending
	for len(rest) >= recordHeaderLen {
		n := recordHeaderLen + int(binary.BigEndian.Uint16(rest[3:5]))
		if len(rest) < n {
			break
		}
		if rest[0] == recordTypeHandshake {
			if suite, ok := serverHelloSuite(rest[recordHeaderLen:n]); ok {
				h.suite, hello = suite, true
			}
		}
		rest = rest[n:]
	}
	h.pending = append(h.pending[:0], rest...)
	return hello
}

// helloRetryRequestRandom is the Random of a HelloRetryRequest, which has the ServerHello's
// format (RFC 8446 §4.1.3): SHA-256 of "HelloRetryRequest".
var helloRetryRequestRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// serverHelloSuite returns the cipher suite of a ServerHello (RFC 8446 §4.1.3) at the start
// of a handshake record's body.
func serverHelloSuite(b []byte) (uint16, bool) {
	// msg_type (1), length (3), legacy_version (2), random (32), legacy_session_id_echo
	// (1 + up to 32), cipher_suite (2)
	if len(b) < 4+2+32+1 || b[0] != handshakeTypeServerHello {
		return 0, false
	}
	if bytes.Equal(b[4+2:4+2+32], helloRetryRequestRandom[:]) {
		return 0, false
	}
	off := 4 + 2 + 32
	off += 1 + int(b[off])
	if len(b) < off+2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(b[off:]), true
}

// sealR0 seals R0 for the suite of the ServerHello, at sequence number 0.
func (h *halfRTTConn) sealR0() ([]byte, error) {
	prot, err := newRecordProtection(h.suite, h.secret)
	if err != nil {
		return nil, err
	}
	h.prot = prot
	return prot.seal(nil, 0, recordTypeApplicationData, h.params), nil
}

// direct stops reconciling and forgets the keys.
func (h *halfRTTConn) direct() {
	h.phase = phaseDirect
	h.secret, h.prot, h.r0 = nil, nil, nil
}

func (h *halfRTTConn) fail(format string, args ...any) error {
	h.err = fmt.Errorf("%w: "+format, append([]any{errHalfRTT}, args...)...)
	h.phase = phaseFailed
	h.secret, h.prot, h.r0, h.pending = nil, nil, nil, nil
	return h.err
}

// writeOffset reconciles the records crypto/tls writes after R0 with the wire: see
// reconcile. A record split across writes waits for its end.
func (h *halfRTTConn) writeOffset(p []byte) (int, error) {
	h.pending = append(h.pending, p...)
	var out []byte
	rest := h.pending
	for h.phase == phaseOffset && len(rest) >= recordHeaderLen {
		n := recordHeaderLen + int(binary.BigEndian.Uint16(rest[3:5]))
		if n > recordHeaderLen+maxCiphertext {
			return 0, h.fail("record of %d bytes", n-recordHeaderLen)
		}
		if len(rest) < n {
			break
		}
		rec, err := h.reconcile(rest[:n])
		if err != nil {
			return 0, err
		}
		out = append(out, rec...)
		rest = rest[n:]
	}
	if h.phase == phaseDirect {
		out = append(out, rest...)
		rest = nil
	}
	h.pending = append(h.pending[:0], rest...)
	if len(out) > 0 {
		if _, err := h.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// reconcile returns what goes on the wire for a record crypto/tls sealed at h.seq: nothing
// for its copy of our parameters; an alert, or data after the parameters, sealed again at
// h.seq+1.
func (h *halfRTTConn) reconcile(rec []byte) ([]byte, error) {
	if rec[0] != recordTypeApplicationData {
		return nil, h.fail("unprotected record (type %d) after the handshake", rec[0])
	}
	if !h.dropped && h.seq == 0 && bytes.Equal(rec, h.r0) {
		// The expected case: the conn's first write, byte-identical to R0. The counters agree
		// from here on.
		h.direct()
		return nil, nil
	}
	typ, data, err := h.prot.open(rec, h.seq)
	if err != nil {
		return nil, h.fail("record %d does not decrypt with the application keys: %v", h.seq, err)
	}
	switch typ {
	case recordTypeApplicationData:
		if !h.dropped {
			if !bytes.HasPrefix(data, h.params) {
				return nil, h.fail("the first application data is not the transport parameters sent at 0.5-RTT")
			}
			data, h.dropped = data[len(h.params):], true
			if len(data) == 0 {
				h.seq++
				h.direct()
				return nil, nil
			}
		}
	case recordTypeAlert:
	default:
		// A session ticket would need its own sequence number and a key update new keys.
		return nil, h.fail("post-handshake message (content type %d)", typ)
	}
	out := h.prot.seal(nil, h.seq+1, typ, data)
	h.seq++
	if h.hooks != nil {
		h.hooks.halfRTTResequenced.Add(1)
	}
	return out, nil
}

// recordProtection seals and opens TLS 1.3 records under one traffic secret (RFC 8446 §5.2,
// §7.3).
type recordProtection struct {
	aead cipher.AEAD
	iv   [12]byte
}

// newRecordProtection derives the write key and IV of a TLS 1.3 cipher suite from a traffic
// secret.
func newRecordProtection(suite uint16, secret []byte) (*recordProtection, error) {
	var (
		h       func() hash.Hash
		keyLen  int
		newAEAD func(key []byte) (cipher.AEAD, error)
	)
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		h, keyLen, newAEAD = sha256.New, 16, newAESGCM
	case tls.TLS_AES_256_GCM_SHA384:
		h, keyLen, newAEAD = sha512.New384, 32, newAESGCM
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		h, keyLen, newAEAD = sha256.New, chacha20poly1305.KeySize, chacha20poly1305.New
	default:
		return nil, fmt.Errorf("cipher suite %#04x is not a TLS 1.3 suite", suite)
	}
	if len(secret) != h().Size() {
		return nil, fmt.Errorf("a %d-byte secret for %s", len(secret), tls.CipherSuiteName(suite))
	}
	key, err := expandLabel(h, secret, "key", keyLen)
	if err != nil {
		return nil, err
	}
	iv, err := expandLabel(h, secret, "iv", 12)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err // e.g. GCM with our own nonces in FIPS 140-only mode
	}
	p := &recordProtection{aead: aead}
	copy(p.iv[:], iv)
	return p, nil
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// expandLabel is HKDF-Expand-Label with an empty context (RFC 8446 §7.1).
func expandLabel(h func() hash.Hash, secret []byte, label string, length int) ([]byte, error) {
	label = "tls13 " + label
	info := binary.BigEndian.AppendUint16(nil, uint16(length))
	info = append(info, byte(len(label)))
	info = append(info, label...)
	info = append(info, 0) // context
	return hkdf.Expand(h, secret, string(info), length)
}

// nonce is the per-record nonce: the IV XORed with the sequence number (RFC 8446 §5.3).
func (p *recordProtection) nonce(seq uint64) []byte {
	n := p.iv
	for i := range 8 {
		n[len(n)-1-i] ^= byte(seq >> (8 * i))
	}
	return n[:]
}

// seal appends a TLS 1.3 record carrying data of content type typ, without padding (as
// crypto/tls writes them), protected at sequence number seq.
func (p *recordProtection) seal(dst []byte, seq uint64, typ byte, data []byte) []byte {
	inner := append(append(make([]byte, 0, len(data)+1), data...), typ)
	n := len(inner) + p.aead.Overhead()
	hdr := [recordHeaderLen]byte{recordTypeApplicationData, 0x03, 0x03, byte(n >> 8), byte(n)}
	dst = append(dst, hdr[:]...)
	return p.aead.Seal(dst, p.nonce(seq), inner, hdr[:])
}

// open decrypts a TLS 1.3 record protected at sequence number seq and returns its content
// type and content, padding removed.
func (p *recordProtection) open(rec []byte, seq uint64) (typ byte, data []byte, err error) {
	if len(rec) < recordHeaderLen {
		return 0, nil, errors.New("short record")
	}
	inner, err := p.aead.Open(nil, p.nonce(seq), rec[recordHeaderLen:], rec[:recordHeaderLen])
	if err != nil {
		return 0, nil, err
	}
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, nil, errors.New("no content type")
	}
	return inner[i], inner[:i], nil
}

// halfRTTRecord is what a listener with cfg sends at 0.5-RTT, nil if it does not.
func halfRTTRecord(cfg *session.Config) []byte {
	if !halfRTT(false, cfg) {
		return nil
	}
	return paramsRecord(localParams(cfg))
}
