package push

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/jsonx"
)

// FuzzInstallation feeds installation bodies as clients send them through decoding and validation:
// no panic, and whatever is accepted has valid tags within the limit, no other user's tag, and
// templates that expand.
func FuzzInstallation(f *testing.F) {
	for _, s := range []string{
		`{"platform":"apns","pushChannel":"dev-12345678","tags":["news"]}`,
		`{"platform":"gcm","pushChannel":"dev-12345678","templates":{"t":{"body":"{\"data\":{\"m\":\"$(m)\"}}","tags":["lang-en"]}}}`,
		`{"platform":"wns","pushChannel":"dev-12345678","templates":{"t":{"body":"<toast>$(x, 3)</toast>","headers":{"X-WNS-Type":"wns/toast"}}}}`,
		`{"platform":"apns","pushChannel":"dev-12345678","tags":["_UserId:bob"]}`,
		`{"platform":"mpns","pushChannel":"x"}`,
		`{"platform":"apns","pushChannel":"dev-12345678","templates":{"t":{"body":"$("}}}`,
	} {
		f.Add(s, "alice")
	}
	s := New(Options{Platforms: []Platform{newTestPlatform(APNs), newTestPlatform(FCM), newTestPlatform(WNS)}, Config: Config{ClientTags: []string{"news", "lang-*"}}})
	f.Fuzz(func(t *testing.T, body, user string) {
		var in Installation
		if jsonx.Unmarshal([]byte(body), &in) != nil {
			return
		}
		c := Caller{UserID: user}
		rows, err := s.installationRows(c, "inst-1", in)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("%s: a non-input error %v", body, err)
			}
			return
		}
		for _, r := range rows {
			if len(r.Tags) > s.cfg.MaxTags {
				t.Fatalf("%d tags", len(r.Tags))
			}
			for _, tag := range r.Tags {
				if ValidTag(tag) != nil {
					t.Fatalf("invalid tag %q stored", tag)
				}
				if strings.HasPrefix(tag, UserTagPrefix) && tag != UserTag(user) {
					t.Fatalf("tag %q of another user stored for %q", tag, user)
				}
			}
			if r.TemplateBody != "" {
				if _, _, err := Expand(r.Platform, Template{Body: r.TemplateBody, Headers: r.Headers}, map[string]string{"m": "v"}); err != nil {
					t.Fatalf("accepted template does not expand: %v", err)
				}
			}
		}
	})
}
