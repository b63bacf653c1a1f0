package audit

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Redacted replaces the value of a secret-looking field.
const Redacted = "[redacted]"

// secretWords are the name fragments of fields never kept in Before or After (matched in the
// lower-cased name with '-', '_' and '.' removed).
var secretWords = []string{"password", "passwd", "secret", "token", "apikey", "masterkey", "applicationkey", "systemkey",
	"privatekey", "encryptionkey", "authorization", "cookie", "credential", "hash", "salt", "session", "signature"}

// dataMaps are objects whose member names are the app's own names (columns, permissions by
// operation, settings of a table), not field names: a column called "password" is kept, its value
// is a type. Only their direct members are exempt.
var dataMaps = map[string]bool{"columns": true, "permissions": true, "indexes": true}

// SecretName reports whether a field name looks like it holds a secret ("key" alone too).
func SecretName(name string) bool {
	n := strings.NewReplacer("-", "", "_", "", ".", "").Replace(strings.ToLower(name))
	if n == "key" || n == "keys" || strings.HasSuffix(n, "key") {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Redact returns doc with the value of every secret-looking member (SecretName) replaced by
// "[redacted]", at any depth. A document that is not JSON is replaced by {"unreadable":true}: it is
// never stored as given.
func Redact(doc json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return json.RawMessage(`{"unreadable":true}`)
	}
	out, err := json.Marshal(redact(v, false))
	if err != nil {
		return json.RawMessage(`{"unreadable":true}`)
	}
	return out
}

func redact(v any, exempt bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if !exempt && SecretName(k) {
				x[k] = Redacted
				continue
			}
			x[k] = redact(val, !exempt && dataMaps[strings.ToLower(k)])
		}
		return x
	case []any:
		for i := range x {
			x[i] = redact(x[i], false)
		}
		return x
	}
	return v
}
