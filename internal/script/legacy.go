package script

// decimalLeadingZeros rewrites legacy sloppy-mode decimal literals with a leading zero whose digits
// include 8 or 9 (08, 09.5, 0019: Node reads them as decimals, goja refuses them) by turning the
// leading zeros into spaces, so every line and column of the file stays where it was and error
// positions still point at the author's text. Strings, template literals, comments and regular
// expression literals are skipped; nothing else changes. Octal-looking literals made only of 0-7
// (012) are left alone: goja reads those as octal, as Node does. It reports whether it changed
// anything.
//
// A hand-written scanner rather than a parser: the point is to accept text that goja's parser
// refuses, so there is no AST to work from.
func decimalLeadingZeros(src string) (string, bool) {
	b := []byte(src)
	changed := false
	// prevSignificant is the last non-space, non-comment byte (0 at start); prevWord the last
	// identifier when that byte ended one, to tell a division from a regular expression.
	var prevSignificant byte
	prevWord := ""
	n := len(b)
	for i := 0; i < n; {
		c := b[i]
		switch {
		case c == '/' && i+1 < n && b[i+1] == '/':
			for i < n && b[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < n && b[i+1] == '*':
			i += 2
			for i+1 < n && !(b[i] == '*' && b[i+1] == '/') {
				i++
			}
			i += 2
			continue
		case c == '\'' || c == '"':
			i = skipQuoted(b, i, c)
			prevSignificant, prevWord = c, ""
			continue
		case c == '`':
			i = skipTemplate(b, i)
			prevSignificant, prevWord = c, ""
			continue
		case c == '/' && regexAllowed(prevSignificant, prevWord):
			i = skipRegexp(b, i)
			prevSignificant, prevWord = '/', ""
			continue
		case isIdentStart(c):
			j := i
			for j < n && isIdentPart(b[j]) {
				j++
			}
			prevSignificant, prevWord = b[j-1], string(b[i:j])
			i = j
			continue
		case c >= '0' && c <= '9' || c == '.' && i+1 < n && b[i+1] >= '0' && b[i+1] <= '9':
			j := i
			for j < n && (isIdentPart(b[j]) || b[j] == '.' ||
				(b[j] == '+' || b[j] == '-') && j > i && (b[j-1] == 'e' || b[j-1] == 'E') && !hexLike(b[i:j])) {
				j++
			}
			if c == '0' && j-i > 1 && b[i+1] >= '0' && b[i+1] <= '9' {
				digits := j
				for k := i; k < j; k++ {
					if b[k] < '0' || b[k] > '9' {
						digits = k
						break
					}
				}
				nonOctal := false
				for k := i; k < digits; k++ {
					if b[k] == '8' || b[k] == '9' {
						nonOctal = true
					}
				}
				if nonOctal {
					for k := i; k < digits-1 && b[k] == '0'; k++ {
						b[k] = ' '
						changed = true
					}
				}
			}
			prevSignificant, prevWord = '0', ""
			i = j
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		}
		prevSignificant, prevWord = c, ""
		i++
	}
	return string(b), changed
}

func hexLike(num []byte) bool {
	return len(num) > 1 && num[0] == '0' && (num[1] == 'x' || num[1] == 'X')
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

// regexAllowed says whether a '/' after this token starts a regular expression literal.
func regexAllowed(prev byte, word string) bool {
	if word != "" {
		switch word {
		case "return", "typeof", "case", "in", "of", "delete", "void", "throw", "new", "instanceof", "else", "do", "yield", "await":
			return true
		}
		return false
	}
	switch prev {
	case ')', ']', '}', '0', '\'', '"', '`':
		return false
	}
	return true
}

func skipQuoted(b []byte, i int, q byte) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case q, '\n':
			return i + 1
		}
	}
	return i
}

func skipTemplate(b []byte, i int) int {
	depth := 0
	for i++; i < len(b); i++ {
		switch {
		case b[i] == '\\':
			i++
		case depth == 0 && b[i] == '`':
			return i + 1
		case b[i] == '$' && i+1 < len(b) && b[i+1] == '{':
			depth++
			i++
		case depth > 0 && b[i] == '}':
			depth--
		}
	}
	return i
}

func skipRegexp(b []byte, i int) int {
	inClass := false
	for i++; i < len(b); i++ {
		switch {
		case b[i] == '\\':
			i++
		case b[i] == '[':
			inClass = true
		case b[i] == ']':
			inClass = false
		case b[i] == '/' && !inClass:
			i++
			for i < len(b) && isIdentPart(b[i]) {
				i++
			}
			return i
		case b[i] == '\n':
			return i
		}
	}
	return i
}
