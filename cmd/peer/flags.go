package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/nettransport"
)

// defaultALPN is the application protocol peer listen and peer send speak.
const defaultALPN = "peerwire/1"

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// trustList is the repeatable --trust flag: each value is added to the policy as it is
// parsed, so a malformed ID is reported as a bad flag value.
type trustList struct{ policy *certs.TrustPolicy }

func (t trustList) String() string { return "" }

func (t trustList) Set(v string) error { return t.policy.Add(strings.TrimSpace(v)) }

// addrFlag is a multiaddr flag.
type addrFlag struct{ addr ma.Multiaddr }

func (a *addrFlag) String() string {
	if a.addr == nil {
		return ""
	}
	return a.addr.String()
}

func (a *addrFlag) Set(v string) error {
	m, err := ma.NewMultiaddr(v)
	if err != nil {
		return fmt.Errorf("not a multiaddr (want e.g. /ip4/127.0.0.1/udp/4001/quic-v1): %w", err)
	}
	a.addr = m
	return nil
}

// homeFlag declares --home.
func homeFlag(fs *flag.FlagSet) *string {
	return fs.String("home", "", "identity directory (default $PEER_HOME, else ~/.peerwire)")
}

// resolveHome applies the default to the --home value.
func resolveHome(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if h := os.Getenv("PEER_HOME"); h != "" {
		return h, nil
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory (%v): pass --home DIR or set PEER_HOME", err)
	}
	return filepath.Join(u, ".peerwire"), nil
}

// loadIdentity loads the credential saved by peer init in the home given by --home.
func loadIdentity(homeFlag string) (*certs.Credential, error) {
	home, err := resolveHome(homeFlag)
	if err != nil {
		return nil, err
	}
	if !certs.Exists(home) {
		return nil, fmt.Errorf("no identity in %s: create one with 'peer init --home %s'", home, home)
	}
	return certs.Load(home)
}

// peerFlags are the flags listen and send share: who we are, whom we trust, which protocols.
type peerFlags struct {
	home     *string
	trust    certs.TrustPolicy
	trustAny *bool
	alpn     stringList
}

func declarePeerFlags(fs *flag.FlagSet) *peerFlags {
	p := &peerFlags{home: homeFlag(fs)}
	fs.Var(trustList{&p.trust}, "trust", "trust the peer with this certificate hash (64 hex digits), peer ID (12D3KooW...)\nor identity key (ed25519:<64 hex>); repeatable")
	p.trustAny = fs.Bool("trust-any", false, "trust any peer with a well-formed certificate (no allowlist)")
	fs.Var(&p.alpn, "alpn", "application protocol to negotiate, in order of preference; repeatable\n(default "+defaultALPN+")")
	return p
}

// credential checks the trust flags and loads the identity.
func (p *peerFlags) credential() (*nettransport.Credential, error) {
	if p.trust.AnyAuthenticated = *p.trustAny; !p.trust.AnyAuthenticated && len(p.trust.Hashes) == 0 && len(p.trust.Keys) == 0 {
		return nil, usagef("no trusted peers: pass --trust ID or --trust-any")
	}
	for _, a := range p.alpn {
		if a == "" || len(a) > 255 {
			return nil, usagef("invalid --alpn %q: want 1 to 255 bytes", a)
		}
	}
	cred, err := loadIdentity(*p.home)
	if err != nil {
		return nil, err
	}
	return &nettransport.Credential{Certificate: cred, Trust: p.trust}, nil
}

func (p *peerFlags) protocols() []string {
	if len(p.alpn) == 0 {
		return []string{defaultALPN}
	}
	return p.alpn
}

// addrUsage turns an address the transport cannot use into a usage error.
func addrUsage(flagName string, err error) error {
	var ae *nettransport.AddrError
	if errors.As(err, &ae) {
		return usagef("--%s: %v", flagName, err)
	}
	return err
}
