package keysettest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"fmt"
	"sync"
)

// testkeys.pem holds 8 RSA-2048 and 8 P-256 private keys generated for tests only
// (generating RSA keys under -race is slow). They protect nothing.
//
//go:embed testkeys.pem
var testKeysPEM []byte

// pool is parsed once; it is immutable afterwards.
var pool = sync.OnceValues(func() ([]*rsa.PrivateKey, []*ecdsa.PrivateKey) {
	var (
		rsaKeys []*rsa.PrivateKey
		ecKeys  []*ecdsa.PrivateKey
	)
	rest := testKeysPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			panic(fmt.Sprintf("keysettest: bad embedded key: %v", err))
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			rsaKeys = append(rsaKeys, k)
		case *ecdsa.PrivateKey:
			ecKeys = append(ecKeys, k)
		}
	}
	return rsaKeys, ecKeys
})

// PoolRSAKey returns the i-th embedded RSA-2048 test key, generating a fresh key
// when i is beyond the pool.
func PoolRSAKey(i int) *rsa.PrivateKey {
	keys, _ := pool()
	if i < len(keys) {
		return keys[i]
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// PoolECKey returns the i-th embedded P-256 test key, generating a fresh key when
// i is beyond the pool.
func PoolECKey(i int) *ecdsa.PrivateKey {
	_, keys := pool()
	if i < len(keys) {
		return keys[i]
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

var _ crypto.Signer = (*rsa.PrivateKey)(nil)
