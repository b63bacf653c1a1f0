package token

import (
	"math"
	"strconv"
)

// scanFlatClaims decodes the claims object of the tokens we and the classic snippets issue — a flat
// object of numbers and escape-free strings — without reflection, in a few allocations. It runs only
// on signature-verified payloads, and on anything it does not fully understand (nesting, escapes,
// duplicate keys, odd types) it returns ok=false so that parseClaimsSlow, built on encoding/json,
// decides. It therefore never accepts what encoding/json would refuse.
func scanFlatClaims(payload []byte) (c *Claims, ok bool) {
	s := string(payload) // one allocation; every string claim below is a substring of it
	c = &Claims{payload: s}
	i := skipWS(s, 0)
	if i >= len(s) || s[i] != '{' {
		return nil, false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == '}' {
		return c, skipWS(s, i+1) == len(s)
	}
	var seen uint16
	for {
		key, n, ok := scanString(s, i)
		if !ok {
			return nil, false
		}
		i = skipWS(s, n)
		if i >= len(s) || s[i] != ':' {
			return nil, false
		}
		i = skipWS(s, i+1)
		if i >= len(s) {
			return nil, false
		}
		var bit uint16
		switch key {
		case "exp", "iat", "nbf", "ver":
			end := scanNumber(s, i)
			if end == i {
				return nil, false // not a number: let the exact path produce the right error
			}
			f, err := strconv.ParseFloat(s[i:end], 64)
			if err != nil || !inRange(f) {
				return nil, false
			}
			switch key {
			case "exp":
				c.Exp, bit = int64(f), 1
			case "iat":
				c.Iat, c.IatMs, bit = int64(f), int64(math.Round(f*1000)), 2
			case "nbf":
				c.Nbf, bit = int64(f), 4
			case "ver":
				c.Ver, bit = int(f), 8
			}
			i = end
		case "iss", "aud", "uid", "id":
			v, end, ok := scanString(s, i)
			if !ok {
				return nil, false
			}
			switch key {
			case "iss":
				c.Iss, bit = v, 16
			case "aud":
				c.Aud, bit = v, 32
			case "uid":
				c.UID, bit = v, 64
			case "id":
				c.ID, bit = v, 128
			}
			i = end
		case "amr":
			// An array of escape-free strings (what Gatehouse mints); anything else goes to encoding/json.
			v, end, ok := scanStringArray(s, i)
			if !ok {
				return nil, false
			}
			c.AMR, bit, i = v, 256, end
		default:
			// Other claims: only escape-free strings, numbers, booleans and null are skipped here.
			if s[i] == '"' {
				_, end, ok := scanString(s, i)
				if !ok {
					return nil, false
				}
				i = end
			} else if end := scanNumber(s, i); end > i {
				i = end
			} else if end := scanLiteral(s, i); end > i {
				i = end
			} else {
				return nil, false
			}
		}
		if seen&bit != 0 {
			return nil, false // duplicate claim: encoding/json keeps the last; let it decide
		}
		seen |= bit
		i = skipWS(s, i)
		if i >= len(s) {
			return nil, false
		}
		if s[i] == '}' {
			return c, skipWS(s, i+1) == len(s)
		}
		if s[i] != ',' {
			return nil, false
		}
		i = skipWS(s, i+1)
	}
}

// scanStringArray reads a JSON array of escape-free strings (at most maxAMR) starting at s[i] == '['.
func scanStringArray(s string, i int) (v []string, end int, ok bool) {
	if i >= len(s) || s[i] != '[' {
		return nil, i, false
	}
	i = skipWS(s, i+1)
	if i < len(s) && s[i] == ']' {
		return []string{}, i + 1, true
	}
	for {
		str, n, ok := scanString(s, i)
		if !ok || len(v) == maxAMR {
			return nil, i, false
		}
		v = append(v, str)
		i = skipWS(s, n)
		if i >= len(s) {
			return nil, i, false
		}
		if s[i] == ']' {
			return v, i + 1, true
		}
		if s[i] != ',' {
			return nil, i, false
		}
		i = skipWS(s, i+1)
	}
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string without escapes or control characters starting at s[i] == '"'.
func scanString(s string, i int) (v string, end int, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(s); j++ {
		switch b := s[j]; {
		case b == '"':
			return s[i+1 : j], j + 1, true
		case b == '\\' || b < 0x20 || b >= 0x80:
			return "", i, false // escapes and non-ASCII (UTF-8 validation) go to encoding/json
		}
	}
	return "", i, false
}

// scanNumber returns the end of a JSON number at s[i], or i if there is none.
func scanNumber(s string, i int) int {
	j := i
	if j < len(s) && s[j] == '-' {
		j++
	}
	start := j
	if j < len(s) && s[j] == '0' {
		j++
	} else {
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
	}
	if j == start {
		return i
	}
	if j < len(s) && s[j] == '.' {
		k := j + 1
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == j+1 {
			return i
		}
		j = k
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		d := k
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == d {
			return i
		}
		j = k
	}
	return j
}

func scanLiteral(s string, i int) int {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(s)-i >= len(lit) && s[i:i+len(lit)] == lit {
			return i + len(lit)
		}
	}
	return i
}
