package script_test

import (
	"encoding/json"
	"maps"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/script"
)

// TestKeyRotationReachesWarmRuntimes (issue 10 finding 9): after `keys rotate --revoke-previous`, a
// warm pooled runtime sees the new master key in process.env and mobileservice-config, and the
// custom-auth script (which copies the key into a module variable at load time) mints tokens that
// verify under the new key alone.
func TestKeyRotationReachesWarmRuntimes(t *testing.T) {
	var keys atomic.Pointer[script.Keys]
	keys.Store(&script.Keys{MasterKey: masterKey, ApplicationKey: appKey})
	app := maps.Clone(customAuthApp)
	app["service/api/keys.json"] = `{"routes":{"*":{"get":{"permission":"application"}}}}`
	app["service/api/keys.js"] = `var atLoad = process.env.MS_MasterKey;
exports.get = function (req, res) {
    res.send(200, { env: process.env.MS_MasterKey, config: require('mobileservice-config').masterKey, app: process.env.MS_ApplicationKey,
        atLoad: atLoad, enumerable: Object.keys(process.env).indexOf('MS_MasterKey') >= 0 });
};`
	e := newEnv(t, nil, app, func(o *script.Options) { o.Keys = func() script.Keys { return *keys.Load() } })
	appHdr := []string{"X-ZUMO-APPLICATION", appKey}

	expect(t, e.do("POST", "/api/register", `{"email":"ann@example.com","password":"s3cret-pass"}`, appHdr...), 201)
	login := func() string {
		t.Helper()
		r := e.do("POST", "/api/login", `{"email":"ann@example.com","password":"s3cret-pass"}`, appHdr...)
		expect(t, r, 200)
		var out struct {
			Token string `json:"authenticationToken"`
		}
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatal(err)
		}
		return out.Token
	}
	before := login() // warms the runtime pool: login.js now holds the key in a module variable
	expect(t, e.do("GET", "/api/keys", "", appHdr...), 200, `"env":"`+masterKey+`"`, `"atLoad":"`+masterKey+`"`, `"enumerable":true`)

	const rotated = "script-test-rotated-master-key-98765"
	keys.Store(&script.Keys{MasterKey: rotated, ApplicationKey: appKey})
	if err := e.auth.SetSecrets(auth.Secrets{MasterKey: rotated, ApplicationKey: appKey, SystemKey: systemKey}); err != nil {
		t.Fatal(err) // no Previous: the old key is revoked
	}
	if _, err := e.auth.Identify(auth.Credentials{Token: before, HasToken: true}); err == nil {
		t.Fatal("a token signed with the revoked key still verifies")
	}
	expect(t, e.do("GET", "/api/keys", "", appHdr...), 200,
		`"env":"`+rotated+`"`, `"config":"`+rotated+`"`, `"atLoad":"`+rotated+`"`, `"app":"`+appKey+`"`)
	after := login()
	c, err := e.auth.Identify(auth.Credentials{Token: after, HasToken: true})
	if err != nil || c.Level != auth.Authenticated {
		t.Fatalf("token minted by the script after rotation: %v %+v", err, c)
	}
	expect(t, e.do("POST", "/tables/notes", `{"text":"hi"}`, "X-ZUMO-AUTH", after), 201)
}
