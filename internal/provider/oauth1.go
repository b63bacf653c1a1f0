package provider

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// OAuth 1.0a request signing with HMAC-SHA1 (RFC 5849 §3.4), as X/Twitter requires.

// percentEncode is RFC 3986 encoding of everything but unreserved characters (RFC 5849 §3.6).
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatInt(int64(c)>>4, 16)) + strings.ToUpper(strconv.FormatInt(int64(c)&15, 16)))
	}
	return b.String()
}

// OAuth1Signature computes the HMAC-SHA1 signature of a request: params are the oauth_* protocol
// parameters plus the query and form parameters (RFC 5849 §3.4.1.3).
func OAuth1Signature(method, baseURL string, params url.Values, consumerSecret, tokenSecret string) string {
	type kv struct{ k, v string }
	var pairs []kv
	for k, vs := range params {
		for _, v := range vs {
			pairs = append(pairs, kv{percentEncode(k), percentEncode(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	base := strings.ToUpper(method) + "&" + percentEncode(baseURL) + "&" + percentEncode(strings.Join(parts, "&"))
	mac := hmac.New(sha1.New, []byte(percentEncode(consumerSecret)+"&"+percentEncode(tokenSecret)))
	mac.Write([]byte(base))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// oauth1Header builds the Authorization header for a request. extra holds further oauth_*
// parameters (oauth_callback, oauth_verifier); reqParams the query/form parameters of the request.
func oauth1Header(method, baseURL string, reqParams url.Values, consumerKey, consumerSecret, token, tokenSecret string, extra map[string]string, now time.Time, nonce string) string {
	op := map[string]string{
		"oauth_consumer_key":     consumerKey,
		"oauth_nonce":            nonce,
		"oauth_signature_method": "HMAC-SHA1",
		"oauth_timestamp":        strconv.FormatInt(now.Unix(), 10),
		"oauth_version":          "1.0",
	}
	if token != "" {
		op["oauth_token"] = token
	}
	for k, v := range extra {
		op[k] = v
	}
	all := url.Values{}
	for k, vs := range reqParams {
		all[k] = append([]string(nil), vs...)
	}
	for k, v := range op {
		all.Set(k, v)
	}
	op["oauth_signature"] = OAuth1Signature(method, baseURL, all, consumerSecret, tokenSecret)
	keys := make([]string, 0, len(op))
	for k := range op {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = percentEncode(k) + `="` + percentEncode(op[k]) + `"`
	}
	return "OAuth " + strings.Join(parts, ", ")
}

// ParseOAuth1Header reads the parameters of an OAuth Authorization header (fakes use it).
func ParseOAuth1Header(h string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(h, "OAuth ")
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, false
		}
		v = strings.Trim(v, `"`)
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		out[dk] = dv
	}
	return out, true
}
