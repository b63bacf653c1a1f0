package password

import (
	"fmt"
)

// Params are the argon2id parameters used for new hashes. Zero fields take
// the defaults of DefaultParams, so a configuration file may set only the
// fields it changes.
type Params struct {
	// Memory is the argon2 memory cost in KiB (PHC "m"). Default 19456 (19 MiB).
	Memory uint32
	// Time is the number of passes (PHC "t"). Default 2.
	Time uint32
	// Threads is the degree of parallelism (PHC "p"). Default 1.
	Threads uint8
	// SaltLength in bytes. Default 16.
	SaltLength uint32
	// KeyLength is the length of the derived key in bytes. Default 32.
	KeyLength uint32
}

// OWASP Password Storage Cheat Sheet minimum for argon2id.
const (
	defaultMemoryKiB  = 19 * 1024
	defaultTime       = 2
	defaultThreads    = 1
	defaultSaltLength = 16
	defaultKeyLength  = 32

	minKeyLength    = 16 // shortest stored hash output accepted, any scheme
	minArgon2Salt   = 8  // RFC 9106 §3.1
	maxStoredLength = 1024
)

// DefaultParams returns the OWASP argon2id parameters: m=19456 KiB, t=2, p=1,
// 16-byte salt, 32-byte key.
func DefaultParams() Params {
	return Params{
		Memory:     defaultMemoryKiB,
		Time:       defaultTime,
		Threads:    defaultThreads,
		SaltLength: defaultSaltLength,
		KeyLength:  defaultKeyLength,
	}
}

func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.Memory == 0 {
		p.Memory = d.Memory
	}
	if p.Time == 0 {
		p.Time = d.Time
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.SaltLength == 0 {
		p.SaltLength = d.SaltLength
	}
	if p.KeyLength == 0 {
		p.KeyLength = d.KeyLength
	}
	return p
}

// validate checks p (after defaults) for internal consistency and against l,
// so that every hash the Hasher writes is one it will later accept.
func (p Params) validate(l Limits) error {
	switch {
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("%w: argon2id memory %d KiB must be at least 8*threads", ErrInvalidParams, p.Memory)
	case p.SaltLength < minArgon2Salt:
		return fmt.Errorf("%w: salt length %d below %d bytes", ErrInvalidParams, p.SaltLength, minArgon2Salt)
	case p.KeyLength < minKeyLength:
		return fmt.Errorf("%w: key length %d below %d bytes", ErrInvalidParams, p.KeyLength, minKeyLength)
	}
	a := &argon2Hash{
		variant: SchemeArgon2id,
		memory:  p.Memory, time: p.Time, threads: p.Threads,
		salt: make([]byte, p.SaltLength), key: make([]byte, p.KeyLength),
	}
	if err := a.checkLimits(l); err != nil {
		return fmt.Errorf("%w: configured params exceed the configured limits (raise Limits): %w", ErrInvalidParams, err)
	}
	return nil
}

// Limits are ceilings applied to every stored or imported hash before it is
// verified, so that one hostile or broken row cannot make the server allocate
// gigabytes or spin for minutes. Zero fields take the defaults of
// DefaultLimits. The configured Params must fit inside the Limits.
type Limits struct {
	// MaxMemoryKiB bounds argon2 "m" and scrypt's 128·r·N working memory.
	// Default 65536 (64 MiB, RFC 9106's second recommended option).
	MaxMemoryKiB uint32
	// MaxTime bounds argon2 "t". Default 10.
	MaxTime uint32
	// MaxParallelism bounds argon2 "p" and scrypt "p". Default 8.
	MaxParallelism uint32
	// MaxPBKDF2Iterations bounds PBKDF2 work: iterations × number of output
	// blocks (⌈key length / digest size⌉). Default 2,000,000.
	MaxPBKDF2Iterations int
	// MaxBcryptCost bounds the bcrypt cost (log2 rounds). Default 14.
	MaxBcryptCost int
	// MaxSaltBytes bounds the decoded salt length. Default 256.
	MaxSaltBytes int
	// MaxKeyBytes bounds the decoded hash (derived key) length. Default 128.
	MaxKeyBytes int
}

// DefaultLimits returns the default ceilings documented on Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxMemoryKiB:        64 * 1024,
		MaxTime:             10,
		MaxParallelism:      8,
		MaxPBKDF2Iterations: 2_000_000,
		MaxBcryptCost:       14,
		MaxSaltBytes:        256,
		MaxKeyBytes:         128,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxMemoryKiB == 0 {
		l.MaxMemoryKiB = d.MaxMemoryKiB
	}
	if l.MaxTime == 0 {
		l.MaxTime = d.MaxTime
	}
	if l.MaxParallelism == 0 {
		l.MaxParallelism = d.MaxParallelism
	}
	if l.MaxPBKDF2Iterations == 0 {
		l.MaxPBKDF2Iterations = d.MaxPBKDF2Iterations
	}
	if l.MaxBcryptCost == 0 {
		l.MaxBcryptCost = d.MaxBcryptCost
	}
	if l.MaxSaltBytes == 0 {
		l.MaxSaltBytes = d.MaxSaltBytes
	}
	if l.MaxKeyBytes == 0 {
		l.MaxKeyBytes = d.MaxKeyBytes
	}
	return l
}
