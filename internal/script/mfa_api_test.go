package script_test

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// An API route marked "mfa" needs a token whose amr shows a multi-factor sign-in: a password-only
// token gets 403 with a clear message, no token the usual 401.
func TestAPIRequiresMFA(t *testing.T) {
	e := newEnv(t, nil, map[string]string{
		"api/payouts.json": `{"routes":{"*":{"get":{"permission":"user"},"post":{"permission":"mfa"}}}}`,
		"api/payouts.js": `exports.get = function (req, res) { res.send(200, { list: [] }); };
exports.post = function (req, res) { res.send(201, { by: req.user.userId }); };`,
		"api/vault.json": `{"routes":{"*":{"*":{"permission":"mfa"}}}}`,
		"api/vault.js":   `exports.get = function (req, res) { res.send(200, { secret: 1 }); };`,
	})
	mint := func(amr ...string) string {
		tok, _, err := e.minter.Mint(auth.MintRequest{UserID: "custom:ann", AMR: amr})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pwd, multi := mint("pwd"), mint("pwd", "otp", "mfa")
	expect(t, e.do("GET", "/api/payouts", "", "X-ZUMO-AUTH", pwd), 200)
	expect(t, e.do("POST", "/api/payouts", "{}", "X-ZUMO-AUTH", pwd), 403, "requires multi-factor sign-in")
	expect(t, e.do("POST", "/api/payouts", "{}"), 401)
	expect(t, e.do("POST", "/api/payouts", "{}", "X-ZUMO-AUTH", multi), 201, `"by":"custom:ann"`)
	// Every route "mfa": refused before the body is read.
	expect(t, e.do("GET", "/api/vault", "", "X-ZUMO-AUTH", mint()), 403, "requires multi-factor sign-in")
	expect(t, e.do("GET", "/api/vault", "", "X-ZUMO-AUTH", multi), 200, `"secret":1`)
	expect(t, e.do("GET", "/api/vault", "", "X-ZUMO-MASTER", masterKey), 200)
}
