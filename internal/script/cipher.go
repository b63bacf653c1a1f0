package script

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"strings"

	"github.com/dop251/goja"
)

// Legacy ciphers for scripts that used them: createCipher/createDecipher (OpenSSL EVP_BytesToKey
// with MD5, one round, no salt — the original's own encryptor, spec §2.5) and
// createCipheriv/createDecipheriv, for AES in CBC mode with PKCS#7 padding. They exist so that
// existing scripts keep reading what they stored; they are unauthenticated and should not be used
// for anything new.

func cipherKeyLen(alg string) (int, bool) {
	switch strings.ToLower(alg) {
	case "aes-128-cbc", "aes128":
		return 16, true
	case "aes-192-cbc", "aes192":
		return 24, true
	case "aes-256-cbc", "aes256":
		return 32, true
	}
	return 0, false
}

// evpBytesToKey derives key and IV as OpenSSL's EVP_BytesToKey(MD5, no salt, 1 round).
func evpBytesToKey(password []byte, keyLen, ivLen int) ([]byte, []byte) {
	var out, prev []byte
	for len(out) < keyLen+ivLen {
		h := md5.New()
		h.Write(prev)
		h.Write(password)
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:keyLen], out[keyLen : keyLen+ivLen]
}

func (m *vm) installCiphers(c *goja.Object) {
	ctor := func(encrypt, withIV bool) func(goja.FunctionCall) goja.Value {
		return func(call goja.FunctionCall) goja.Value {
			alg := call.Argument(0).String()
			n, ok := cipherKeyLen(alg)
			if !ok {
				panic(m.errorValue("Unknown cipher " + alg + " (aes-128-cbc, aes-192-cbc and aes-256-cbc are available)"))
			}
			var key, iv []byte
			if withIV {
				key = append([]byte(nil), m.bytes(call.Argument(1), "binary")...)
				iv = append([]byte(nil), m.bytes(call.Argument(2), "binary")...)
				if len(key) != n || len(iv) != aes.BlockSize {
					panic(m.errorValue("Invalid key or iv length"))
				}
			} else {
				key, iv = evpBytesToKey(m.bytes(call.Argument(1), "binary"), n, aes.BlockSize)
			}
			block, err := aes.NewCipher(key)
			if err != nil {
				panic(m.errorValue(err.Error()))
			}
			return m.cipherObject(encrypt, block, iv)
		}
	}
	_ = c.Set("createCipher", ctor(true, false))
	_ = c.Set("createDecipher", ctor(false, false))
	_ = c.Set("createCipheriv", ctor(true, true))
	_ = c.Set("createDecipheriv", ctor(false, true))
	_ = c.Set("getCiphers", func() []string { return []string{"aes-128-cbc", "aes-192-cbc", "aes-256-cbc"} })
}

// cipherObject is the object with update(data[, inEnc[, outEnc]]), final([outEnc]), setAutoPadding.
func (m *vm) cipherObject(encrypt bool, block cipher.Block, iv []byte) *goja.Object {
	rt := m.rt
	o := rt.NewObject()
	var mode cipher.BlockMode
	if encrypt {
		mode = cipher.NewCBCEncrypter(block, iv)
	} else {
		mode = cipher.NewCBCDecrypter(block, iv)
	}
	var pending, carry []byte
	pad, done := true, false
	// out encodes a chunk; like Node's StringDecoder it carries bytes that would split a base64
	// quantum or a UTF-8 sequence over to the next chunk, so update(..., enc) + final(enc) concatenate.
	out := func(b []byte, enc goja.Value, last bool) goja.Value {
		e := encArg(enc, "")
		if e == "" || e == "buffer" {
			return m.newBuffer(b)
		}
		b = append(carry, b...)
		carry = nil
		if !last {
			keep := 0
			switch ne, _ := normEnc(e); ne {
			case "base64", "base64url":
				keep = len(b) % 3
			case "utf8":
				keep = incompleteUTF8(b)
			}
			carry = append([]byte(nil), b[len(b)-keep:]...)
			b = b[:len(b)-keep]
		}
		return rt.ToValue(m.encode(b, e))
	}
	_ = o.Set("update", func(c goja.FunctionCall) goja.Value {
		if done {
			panic(m.errorValue("Cipher final already called"))
		}
		pending = append(pending, m.bytes(c.Argument(0), encArg(c.Argument(1), "binary"))...)
		n := len(pending) / aes.BlockSize * aes.BlockSize
		if !encrypt && pad && n == len(pending) && n > 0 {
			n -= aes.BlockSize // keep the last block: it carries the padding
		}
		res := make([]byte, n)
		mode.CryptBlocks(res, pending[:n])
		pending = append([]byte(nil), pending[n:]...)
		return out(res, c.Argument(2), false)
	})
	_ = o.Set("final", func(c goja.FunctionCall) goja.Value {
		if done {
			panic(m.errorValue("Cipher final already called"))
		}
		done = true
		if encrypt {
			if pad {
				p := aes.BlockSize - len(pending)%aes.BlockSize
				for i := 0; i < p; i++ {
					pending = append(pending, byte(p))
				}
			}
			if len(pending)%aes.BlockSize != 0 {
				panic(m.errorValue("data not multiple of block length"))
			}
			res := make([]byte, len(pending))
			mode.CryptBlocks(res, pending)
			return out(res, c.Argument(0), true)
		}
		if len(pending)%aes.BlockSize != 0 {
			panic(m.errorValue("wrong final block length"))
		}
		res := make([]byte, len(pending))
		mode.CryptBlocks(res, pending)
		if pad {
			if len(res) == 0 {
				panic(m.errorValue("bad decrypt"))
			}
			p := int(res[len(res)-1])
			if p == 0 || p > aes.BlockSize || p > len(res) {
				panic(m.errorValue("bad decrypt"))
			}
			for _, b := range res[len(res)-p:] {
				if int(b) != p {
					panic(m.errorValue("bad decrypt"))
				}
			}
			res = res[:len(res)-p]
		}
		return out(res, c.Argument(0), true)
	})
	_ = o.Set("setAutoPadding", func(c goja.FunctionCall) goja.Value {
		pad = len(c.Arguments) == 0 || c.Argument(0).ToBoolean()
		return o
	})
	return o
}

// incompleteUTF8 is how many trailing bytes of b start a UTF-8 sequence that is not complete yet.
func incompleteUTF8(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c&0xC0 == 0x80 {
			continue // continuation byte
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 2
		case c&0xF0 == 0xE0:
			need = 3
		case c&0xF8 == 0xF0:
			need = 4
		}
		if need > i {
			return i
		}
		return 0
	}
	return 0
}
