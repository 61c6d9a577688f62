package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
)

var initCommand = &command{
	name:    "init",
	args:    "[--home DIR] [--force]",
	summary: "create this node's identity: an Ed25519 key and a certificate",
	details: `Creates a new Ed25519 identity key, a TLS key and a self-signed certificate signed by the
identity key, saves them in the home directory (identity.key and tls.key mode 0600, tls.crt
0644) and prints the certificate hash and the peer ID. Peers trust this node by either.

An existing identity is never replaced unless --force is given: replacing it changes the
certificate hash and the peer ID, so every peer that trusted the old ones stops trusting
this node.`,
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		home := homeFlag(fs)
		force := fs.Bool("force", false, "replace an existing identity")
		return func(_ context.Context, std stdio, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			dir, err := resolveHome(*home)
			if err != nil {
				return err
			}
			if certs.Exists(dir) && !*force {
				return fmt.Errorf("%s already holds an identity; pass --force to replace it (peers that trust it will stop trusting this node)", dir)
			}
			key, err := identity.GenerateKey()
			if err != nil {
				return err
			}
			cred, err := certs.NewCredential(key, certs.Options{})
			if err != nil {
				return err
			}
			if err := certs.Save(dir, cred); err != nil {
				return err
			}
			fmt.Fprintf(std.stdout, "created identity in %s\n", dir)
			printIdentity(std.stdout, cred)
			return nil
		}
	},
}

var idCommand = &command{
	name:    "id",
	args:    "[--home DIR] [--json | --hash | --peer-id]",
	summary: "print this node's certificate hash and peer ID",
	details: `Prints the identity created by 'peer init': the certificate hash (SHA-256 of the certificate,
what a peer passes to --trust to trust exactly this certificate), the peer ID (the libp2p
form of the identity key, which survives certificate renewal) and the identity keys.
--hash and --peer-id print just that value, for scripts:

  peer listen --trust "$(peer id --home /tmp/bob --hash)" ...`,
	setup: func(fs *flag.FlagSet) func(context.Context, stdio, []string) error {
		home := homeFlag(fs)
		asJSON := fs.Bool("json", false, `print {"cert_hash": ..., "peer_id": ..., "identity_keys": [...]}`)
		onlyHash := fs.Bool("hash", false, "print only the certificate hash")
		onlyPeerID := fs.Bool("peer-id", false, "print only the peer ID")
		return func(_ context.Context, std stdio, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if n := btoi(*asJSON) + btoi(*onlyHash) + btoi(*onlyPeerID); n > 1 {
				return usagef("--json, --hash and --peer-id exclude each other")
			}
			cred, err := loadIdentity(*home)
			if err != nil {
				return err
			}
			switch {
			case *onlyHash:
				fmt.Fprintln(std.stdout, cred.Hash())
			case *onlyPeerID:
				fmt.Fprintln(std.stdout, cred.PeerID())
			case *asJSON:
				return json.NewEncoder(std.stdout).Encode(identityJSON{
					CertHash:     cred.Hash(),
					PeerID:       cred.PeerID().String(),
					IdentityKeys: cred.IdentityKeys(),
				})
			default:
				printIdentity(std.stdout, cred)
			}
			return nil
		}
	},
}

// identityJSON is the output of peer id --json.
type identityJSON struct {
	CertHash     identity.CertHash    `json:"cert_hash"`
	PeerID       string               `json:"peer_id"`
	IdentityKeys []identity.PublicKey `json:"identity_keys"`
}

func printIdentity(w io.Writer, cred *certs.Credential) {
	fmt.Fprintf(w, "cert-hash: %s\n", cred.Hash())
	fmt.Fprintf(w, "peer-id: %s\n", cred.PeerID())
	for _, k := range cred.IdentityKeys() {
		fmt.Fprintf(w, "identity-key: %s\n", k)
	}
	fmt.Fprintf(w, "expires: %s\n", cred.Leaf().NotAfter.UTC().Format("2006-01-02"))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
