package push

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MaxTemplateLength bounds a template body (the largest platform payload is WNS's 5 KB; a template
// expands, so this leaves room without letting a client store megabytes).
const MaxTemplateLength = 16 << 10

// Template is a registration's template: the body with $(prop) placeholders, and platform headers
// (which may hold placeholders too).
type Template struct {
	Body    string
	Headers map[string]string
}

// CheckTemplate validates a template body: every $( has its closing parenthesis, property names are
// non-empty, and a length limit, if given as $(prop, n), is a positive integer.
func CheckTemplate(body string) error {
	if len(body) > MaxTemplateLength {
		return fmt.Errorf("the template body is longer than %d bytes", MaxTemplateLength)
	}
	_, err := expand(body, nil, func(s string) string { return s })
	return err
}

// Expand fills a template for a platform: $(prop) becomes the property's value, escaped for the
// body's syntax (XML for WNS, a JSON string's content otherwise), $(prop, n) its first n characters.
// A property the send does not give becomes the empty string, as in Notification Hubs.
func Expand(platform string, t Template, props map[string]string) ([]byte, map[string]string, error) {
	esc := jsonEscape
	if platform == WNS {
		esc = xmlEscape
		if t.Headers != nil && strings.EqualFold(t.Headers["X-WNS-Type"], "wns/raw") {
			esc = func(s string) string { return s }
		}
	}
	body, err := expand(t.Body, props, esc)
	if err != nil {
		return nil, nil, err
	}
	var headers map[string]string
	if len(t.Headers) > 0 {
		headers = make(map[string]string, len(t.Headers))
		for k, v := range t.Headers {
			hv, err := expand(v, props, headerEscape)
			if err != nil {
				return nil, nil, fmt.Errorf("header %s: %w", k, err)
			}
			headers[k] = hv
		}
	}
	return []byte(body), headers, nil
}

func expand(s string, props map[string]string, esc func(string) string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		rest := s[i+2:]
		j := strings.IndexByte(rest, ')')
		if j < 0 {
			return "", fmt.Errorf("the template has $( without a closing parenthesis")
		}
		inner := rest[:j]
		name, limit := inner, -1
		if k := strings.IndexByte(inner, ','); k >= 0 {
			name = inner[:k]
			n, err := strconv.Atoi(strings.TrimSpace(inner[k+1:]))
			if err != nil || n <= 0 {
				return "", fmt.Errorf("the template placeholder $(%s) has an invalid length", inner)
			}
			limit = n
		}
		name = strings.TrimSpace(name)
		if name == "" {
			return "", fmt.Errorf("the template has an empty placeholder $()")
		}
		v := props[name]
		if limit >= 0 {
			if r := []rune(v); len(r) > limit {
				v = string(r[:limit])
			}
		}
		b.WriteString(esc(v))
		s = rest[j+1:]
	}
}

func jsonEscape(s string) string {
	q, _ := json.Marshal(s)
	return string(q[1 : len(q)-1])
}

var xmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func xmlEscape(s string) string { return xmlReplacer.Replace(s) }

// headerEscape keeps a value on one header line.
func headerEscape(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return ' '
		}
		return r
	}, s)
}
