package certs

import (
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/peerwire/peerwire/identity"
)

// File names inside a credential directory. All are PEM; the private keys
// are PKCS #8 ("PRIVATE KEY"), so standard tools (openssl pkey, openssl x509)
// can read every file.
const (
	IdentityKeyFile = "identity.key" // Ed25519 identity key, mode 0600
	TLSKeyFile      = "tls.key"      // TLS private key of the certificate, mode 0600
	TLSCertFile     = "tls.crt"      // the self-signed certificate, mode 0644
)

const (
	dirMode  fs.FileMode = 0o700
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
)

const (
	pemPrivateKey  = "PRIVATE KEY"
	pemCertificate = "CERTIFICATE"
)

// Save writes c to dir as three PEM files (IdentityKeyFile, TLSKeyFile,
// TLSCertFile), creating dir with mode 0700 if needed. Keys are written 0600
// and the certificate 0644. Each file is written to a temporary file and
// renamed into place, so a crash leaves either the old or the new file, and
// existing files are replaced (that is how a certificate is rotated: load,
// NewCredential with the same identity key, Save). Co-signer private keys are
// not saved; the certificate keeps their signatures.
func Save(dir string, c *Credential) error {
	if c == nil {
		return errors.New("certs: Save of nil Credential")
	}
	idDER, err := x509.MarshalPKCS8PrivateKey(c.id.Ed25519())
	if err != nil {
		return fmt.Errorf("certs: encoding identity key: %w", err)
	}
	tlsDER, err := x509.MarshalPKCS8PrivateKey(c.tlsKey)
	if err != nil {
		return fmt.Errorf("certs: encoding TLS key: %w", err)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	files := []struct {
		name, typ string
		der       []byte
		mode      fs.FileMode
	}{
		{IdentityKeyFile, pemPrivateKey, idDER, keyMode},
		{TLSKeyFile, pemPrivateKey, tlsDER, keyMode},
		{TLSCertFile, pemCertificate, c.cert.Certificate[0], certMode},
	}
	for _, f := range files {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := writeFileAtomic(filepath.Join(dir, f.name), data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600; Chmod sets the exact mode regardless
	// of the umask (and widens the certificate to 0644).
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// Load reads a credential written by Save. It refuses a private key file that
// group or others can access with [*InsecureKeyFileError] (not checked on
// Windows, which has no such mode bits), and checks that the TLS key matches
// the certificate and that the certificate's libp2p extension is validly
// signed by the identity key. The validity period is not checked, so an
// expired credential loads; compare Leaf().NotAfter with the clock to decide
// when to issue a new one.
func Load(dir string) (*Credential, error) {
	idKey, err := readPrivateKey(filepath.Join(dir, IdentityKeyFile))
	if err != nil {
		return nil, err
	}
	edKey, ok := idKey.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("certs: %s: identity key is %T, want Ed25519", filepath.Join(dir, IdentityKeyFile), idKey)
	}
	id, err := identity.NewPrivateKey(edKey)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", filepath.Join(dir, IdentityKeyFile), err)
	}
	tlsKey, err := readPrivateKey(filepath.Join(dir, TLSKeyFile))
	if err != nil {
		return nil, err
	}
	certPath := filepath.Join(dir, TLSCertFile)
	der, err := readPEM(certPath, pemCertificate)
	if err != nil {
		return nil, err
	}
	c, err := assemble(id, tlsKey, der)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, dir)
	}
	return c, nil
}

// Exists reports whether dir already holds any of the credential files, so
// that callers neither overwrite an identity by accident nor treat a
// half-written directory as empty (Load then reports what is missing).
func Exists(dir string) bool {
	for _, name := range []string{IdentityKeyFile, TLSKeyFile, TLSCertFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

func readPrivateKey(path string) (crypto.Signer, error) {
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, &InsecureKeyFileError{Path: path, Mode: st.Mode().Perm()}
		}
	}
	der, err := readPEM(path, pemPrivateKey)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: %s: key type %T cannot sign", path, k)
	}
	return s, nil
}

// readPEM returns the DER of the single PEM block of type typ in path.
func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("certs: %s: no PEM %q block", path, typ)
	}
	if b, _ := pem.Decode(rest); b != nil {
		return nil, fmt.Errorf("certs: %s: more than one PEM block", path)
	}
	return block.Bytes, nil
}
