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

// The cores. The address picks one: /udp/<port>/quic-v1 is QUIC.
const (
	QUIC Core = "quic"
)

// AddrError reports a multiaddr peerwire cannot listen on or dial.
type AddrError struct {
	Addr   string
	Reason string
}

// Error names the address and what is wrong with it.
func (e *AddrError) Error() string {
	return fmt.Sprintf("unsupported address %q: %s (want /ip4|ip6/<ip>/udp/<port>/quic-v1)", e.Addr, e.Reason)
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
	}
	return "", "", &AddrError{Addr: addr.String(), Reason: "no peerwire core for this transport"}
}

// toMultiaddr builds the multiaddr of a bound socket address for a core.
func toMultiaddr(core Core, a net.Addr) (ma.Multiaddr, error) {
	ap, err := netip.ParseAddrPort(a.String())
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
	}
	return nil, fmt.Errorf("unknown core %q", core)
}
