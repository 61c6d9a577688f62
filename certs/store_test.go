package certs

import (
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	require.False(t, Exists(dir))

	c := newCred(t, newKey(t), newKey(t))
	require.NoError(t, Save(dir, c))
	require.True(t, Exists(dir))

	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, c.Hash(), got.Hash())
	require.Equal(t, c.IdentityKeys(), got.IdentityKeys(), "co-signer keys come back from the certificate")
	require.True(t, got.PeerID().Equal(c.PeerID()))
	require.Equal(t, c.IdentityKey().Ed25519(), got.IdentityKey().Ed25519())
	require.Equal(t, c.TLSCertificate().Certificate, got.TLSCertificate().Certificate)
	require.NotNil(t, got.TLSCertificate().Leaf)

	// The loaded credential works in a handshake.
	anyPeer := &TrustPolicy{AnyAuthenticated: true}
	res := handshake(t, ServerConfig(got, anyPeer, []string{"p"}), ClientConfig(c, anyPeer, []string{"p"}))
	require.NoError(t, res.serverErr)
	require.NoError(t, res.clientErr)
}

func TestSaveModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	dir := filepath.Join(t.TempDir(), "a", "node")
	require.NoError(t, Save(dir, newCred(t, newKey(t))))

	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o700), st.Mode().Perm())
	for name, want := range map[string]fs.FileMode{IdentityKeyFile: 0o600, TLSKeyFile: 0o600, TLSCertFile: 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, want, st.Mode().Perm(), name)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 3, "no temporary files left behind")
}

func TestSaveWritesStandardPEM(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Save(dir, newCred(t, newKey(t))))
	for name, typ := range map[string]string{IdentityKeyFile: "PRIVATE KEY", TLSKeyFile: "PRIVATE KEY", TLSCertFile: "CERTIFICATE"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		block, _ := pem.Decode(data)
		require.NotNil(t, block, name)
		require.Equal(t, typ, block.Type, name)
	}
}

func TestSaveReplaces(t *testing.T) {
	dir := t.TempDir()
	id := newKey(t)
	require.NoError(t, Save(dir, newCred(t, id)))
	rotated := newCred(t, id)
	require.NoError(t, Save(dir, rotated))
	got, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, rotated.Hash(), got.Hash())
}

func TestLoadRefusesReadableKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	for _, name := range []string{IdentityKeyFile, TLSKeyFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, Save(dir, newCred(t, newKey(t))))
			path := filepath.Join(dir, name)
			require.NoError(t, os.Chmod(path, 0o644))

			_, err := Load(dir)
			var ie *InsecureKeyFileError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, path, ie.Path)
			require.Equal(t, fs.FileMode(0o644), ie.Mode)
			require.Contains(t, err.Error(), path)
			require.Contains(t, err.Error(), "0644")
			require.Contains(t, err.Error(), "chmod 600")
		})
	}
}

func TestLoadValidates(t *testing.T) {
	a, b := newCred(t, newKey(t)), newCred(t, newKey(t))
	dirA, dirB := t.TempDir(), t.TempDir()
	require.NoError(t, Save(dirA, a))
	require.NoError(t, Save(dirB, b))

	swap := func(t *testing.T, name string) string {
		dir := t.TempDir()
		require.NoError(t, Save(dir, a))
		data, err := os.ReadFile(filepath.Join(dirB, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o600))
		return dir
	}
	t.Run("identity key of another node", func(t *testing.T) {
		_, err := Load(swap(t, IdentityKeyFile))
		require.ErrorContains(t, err, "signed by identity key")
	})
	t.Run("TLS key of another certificate", func(t *testing.T) {
		_, err := Load(swap(t, TLSKeyFile))
		require.ErrorContains(t, err, "does not match")
	})
	t.Run("missing file", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Save(dir, a))
		require.NoError(t, os.Remove(filepath.Join(dir, TLSCertFile)))
		require.True(t, Exists(dir))
		_, err := Load(dir)
		require.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)
	})
	t.Run("not PEM", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, Save(dir, a))
		require.NoError(t, os.WriteFile(filepath.Join(dir, TLSCertFile), []byte("hello"), 0o644))
		_, err := Load(dir)
		require.Error(t, err)
	})
}

func TestLoadExpiredCredential(t *testing.T) {
	c, err := newCredential(newKey(t), Options{Validity: time.Hour}, time.Now().Add(-48*time.Hour))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, Save(dir, c))
	got, err := Load(dir)
	require.NoError(t, err, "an expired credential loads so it can be renewed")
	require.Equal(t, c.Hash(), got.Hash())
}
