package nettransport

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	ma "github.com/multiformats/go-multiaddr"
)

// Core names a session implementation.
type Core string

// The cores. The address picks one: /udp/<port>/quic-v1 is QUIC, /tcp/<port>/qmux is QMux.
const (
	QUIC Core = "quic"
	QMux Core = "qmux"
)

// P_QMUX is the multiaddr protocol code of the "qmux" component (/tcp/<port>/qmux): QMux
// (draft-ietf-quic-qmux-02) over TLS 1.3 over TCP. It is in the multicodec private-use range
// (0x300000–0x3FFFFF); its bytes spell "?QS", the start of QMux's QX_TRANSPORT_PARAMETERS
// magic. Every program that parses such addresses must register it; importing nettransport
// does.
const P_QMUX = 0x3f5153

func init() {
	if ma.ProtocolWithCode(P_QMUX).Code != 0 {
		return
	}
	if err := ma.AddProtocol(ma.Protocol{Name: "qmux", Code: P_QMUX, VCode: ma.CodeToVarint(P_QMUX)}); err != nil {
		panic(err)
	}
}

// AddrError reports a multiaddr peerwire cannot listen on or dial.
type AddrError struct {
	Addr   string
	Reason string
}

// Error names the address and what is wrong with it.
func (e *AddrError) Error() string {
	return fmt.Sprintf("unsupported address %q: %s (want /ip4|ip6/<ip>/udp/<port>/quic-v1 or /ip4|ip6/<ip>/tcp/<port>/qmux)", e.Addr, e.Reason)
}

// splitAddr maps a multiaddr to its core and a "host:port" for the socket layer.
func splitAddr(addr ma.Multiaddr) (Core, string, error) {
	comps := []ma.Component(addr)
	if len(comps) != 3 {
		return "", "", &AddrError{Addr: addr.String(), Reason: "expected three components"}
	}
	var host string
	switch comps[0].Protocol().Code {
	case ma.P_IP4, ma.P_IP6:
		ip, err := netip.ParseAddr(comps[0].Value())
		if err != nil {
			return "", "", &AddrError{Addr: addr.String(), Reason: err.Error()}
		}
		host = ip.String()
	case ma.P_DNS, ma.P_DNS4, ma.P_DNS6:
		host = comps[0].Value()
	default:
		return "", "", &AddrError{Addr: addr.String(), Reason: "first component must be ip4, ip6 or dns"}
	}
	port := comps[1].Value()
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", &AddrError{Addr: addr.String(), Reason: "bad port"}
	}
	switch {
	case comps[1].Protocol().Code == ma.P_UDP && comps[2].Protocol().Code == ma.P_QUIC_V1:
		return QUIC, net.JoinHostPort(host, port), nil
	case comps[1].Protocol().Code == ma.P_TCP && comps[2].Protocol().Code == P_QMUX:
		return QMux, net.JoinHostPort(host, port), nil
	}
	return "", "", &AddrError{Addr: addr.String(), Reason: "no peerwire core for this transport"}
}

// toMultiaddr builds the multiaddr of a bound socket address for a core.
func toMultiaddr(core Core, a net.Addr) (ma.Multiaddr, error) {
	ap, err := netip.ParseAddrPort(a.String()) // works for *net.UDPAddr and *net.TCPAddr
	if err != nil {
		return nil, err
	}
	ipProto := "ip4"
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		ipProto = "ip6"
	}
	switch core {
	case QUIC:
		return ma.NewMultiaddr(fmt.Sprintf("/%s/%s/udp/%d/quic-v1", ipProto, ip, ap.Port()))
	case QMux:
		return ma.NewMultiaddr(fmt.Sprintf("/%s/%s/tcp/%d/qmux", ipProto, ip, ap.Port()))
	}
	return nil, fmt.Errorf("unknown core %q", core)
}
