package nettransport_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerwire/peerwire/certs"
	"github.com/peerwire/peerwire/identity"
	"github.com/peerwire/peerwire/nettransport"
)

// newCertificate makes an identity key and a certificate for it. Real nodes keep theirs on
// disk with certs.Save and certs.Load.
func newCertificate() *certs.Credential {
	key, err := identity.GenerateKey()
	if err != nil {
		log.Fatal(err)
	}
	cert, err := certs.NewCredential(key, certs.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return cert
}

// Two peers that trust each other's certificate hash: one listens, the other dials, and a
// message goes each way.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, bob := newCertificate(), newCertificate()

	tr, err := nettransport.New(nettransport.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	// Alice listens, trusting Bob's certificate hash.
	aliceCred := &nettransport.Credential{Certificate: alice}
	aliceCred.Trust.Hashes = append(aliceCred.Trust.Hashes, bob.Hash())
	l, err := tr.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"), []string{"chat/1"}, aliceCred)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		req, err := l.Accept(ctx)
		if err != nil {
			return
		}
		conn, err := req.Accept(ctx)
		if err != nil {
			return
		}
		msg, _, err := conn.Recv(ctx)
		if err != nil {
			return
		}
		_ = conn.Send(ctx, append([]byte("echo: "), msg...))
		<-conn.Done() // Bob closes
	}()

	// Bob dials, trusting Alice's identity key (survives her certificate rotation).
	bobCred := &nettransport.Credential{Certificate: bob}
	bobCred.Trust.Keys = alice.IdentityKeys()
	conn, err := tr.Dial(ctx, l.Addr(), []string{"chat/1"}, bobCred)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("ALPN:", conn.ALPN())
	fmt.Println("talking to alice:", conn.RemoteIdentity() == alice.Hash())

	if err := conn.Send(ctx, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	reply, _, err := conn.Recv(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply))
	if err := conn.Close(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// ALPN: chat/1
	// talking to alice: true
	// echo: hello
}

// A dialer whose certificate the listener does not trust learns it from Dial, with the
// listener's address and its own certificate's identity.
func ExampleTransport_Dial_rejected() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server, stranger := newCertificate(), newCertificate()

	tr, err := nettransport.New(nettransport.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	serverCred := &nettransport.Credential{Certificate: server}
	serverCred.Trust.Hashes = append(serverCred.Trust.Hashes, newCertificate().Hash()) // someone else
	l, err := tr.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"), []string{"app"}, serverCred)
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if req, err := l.Accept(ctx); err == nil {
			_, err = req.Accept(ctx)
			var rej *certs.RejectError
			if errors.As(err, &rej) {
				log.Printf("listener refused %s: %v", rej.PeerHash.Short(), rej.Reason)
			}
		}
	}()

	strangerCred := &nettransport.Credential{Certificate: stranger}
	strangerCred.Trust.Hashes = append(strangerCred.Trust.Hashes, server.Hash())
	_, err = tr.Dial(ctx, l.Addr(), []string{"app"}, strangerCred)
	var byPeer *certs.RejectedByPeerError
	fmt.Println("refused by the listener:", errors.As(err, &byPeer))
	fmt.Println("names our certificate:", byPeer.OurHash == stranger.Hash())
	// Output:
	// refused by the listener: true
	// names our certificate: true
}
