package config

import "time"

// KeyRing configures the cluster key ring in the database (package keyring).
type KeyRing struct {
	// KEK and KEKFile give the key-encryption key (at most one of them). With one, the keys live in
	// the database, sealed; without, a PostgreSQL cluster only declares its keys' fingerprints there.
	KEK     string
	KEKFile string
	// Grace is how long a rotation waits for every live instance to acknowledge a new key before it
	// signs with it anyway; Poll is the heartbeat and the fallback reload interval.
	Grace time.Duration
	Poll  time.Duration
}

func keyRingSettings() []setting {
	return []setting{
		{"key_encryption_key", []string{"GATEHOUSE_KEY_ENCRYPTION_KEY"}, "", "", kSecret, "key-encryption key (32 random bytes, base64 or hex: openssl rand -base64 32); set it to keep the keys in the database, sealed, shared by every instance (docs/operations.md)", func(c *Config) any { return &c.KeyRing.KEK }},
		{"key_encryption_key_file", []string{"GATEHOUSE_KEY_ENCRYPTION_KEY_FILE"}, "", "", kString, "file holding the key-encryption key (instead of key_encryption_key)", func(c *Config) any { return &c.KeyRing.KEKFile }},
		{"key_ring.grace", []string{"GATEHOUSE_KEY_RING_GRACE"}, "", "10s", kDuration, "a rotated key signs once every live instance accepted it, or after this long", func(c *Config) any { return &c.KeyRing.Grace }},
		{"key_ring.poll_interval", []string{"GATEHOUSE_KEY_RING_POLL_INTERVAL"}, "", "1s", kDuration, "instance heartbeat and key-ring reload interval (the fallback when change notifications are down)", func(c *Config) any { return &c.KeyRing.Poll }},
	}
}

func (c *Config) validateKeyRing() error {
	k := &c.KeyRing
	if k.KEK != "" && k.KEKFile != "" {
		return &Error{Setting: "key_encryption_key_file", Value: k.KEKFile, Reason: "set either key_encryption_key or key_encryption_key_file, not both"}
	}
	if k.Poll < 100*time.Millisecond || k.Poll > time.Minute {
		return &Error{Setting: "key_ring.poll_interval", Value: k.Poll.String(), Reason: "must be between 100ms and 1m"}
	}
	if k.Grace < 3*k.Poll {
		return &Error{Setting: "key_ring.grace", Value: k.Grace.String(), Reason: "must be at least three poll intervals (key_ring.poll_interval)"}
	}
	return nil
}
