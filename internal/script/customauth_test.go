package script_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/token"
)

// customAuthApp is the classic custom-authentication tutorial app, written the way the tutorial wrote
// it (Node 0.10 idioms: new Buffer, crypto.pbkdf2 with a callback, binary-string HMAC keys).
var customAuthApp = map[string]string{
	"datamodel.json": `{"tables":[
		{"name":"accounts","permissions":{"*":"admin"}},
		{"name":"notes","permissions":{"read":"authenticated","insert":"authenticated","update":"admin","delete":"admin"}}
	]}`,
	"service/api/register.json": `{"routes":{"*":{"post":{"permission":"application"}}}}`,
	"service/api/login.json":    `{"routes":{"*":{"post":{"permission":"application"}}}}`,
	"service/shared/jwthelper.js": `var crypto = require('crypto');
var iterations = 1000;
var bytes = 32;

exports.createSalt = function () {
    return new Buffer(crypto.randomBytes(bytes)).toString('base64');
};

exports.hash = function hash(text, salt, callback) {
    crypto.pbkdf2(text, salt, iterations, bytes, function (err, derivedKey) {
        if (err) { callback(err); }
        else {
            var h = new Buffer(derivedKey).toString('base64');
            callback(null, h);
        }
    });
};

exports.slowEquals = function (a, b) {
    var diff = a.length ^ b.length;
    for (var i = 0; i < a.length && i < b.length; i++) {
        diff |= (a[i] ^ b[i]);
    }
    return diff === 0;
};

exports.zumoJwt = function zumoJwt(expiryDate, aud, userId, masterKey) {
    var crypto = require('crypto');
    function base64(input) {
        return new Buffer(input, 'utf8').toString('base64');
    }
    function urlFriendly(b64) {
        return b64.replace(/\+/g, '-').replace(/\//g, '_').replace(new RegExp("=", "g"), '');
    }
    function signature(input) {
        var key = crypto.createHash('sha256').update(masterKey + "JWTSig").digest('binary');
        var str = crypto.createHmac('sha256', key).update(input).digest('base64');
        return urlFriendly(str);
    }
    var s1 = '{"alg":"HS256","typ":"JWT","kid":"0"}';
    var j2 = {
        "exp": expiryDate.valueOf() / 1000,
        "iss": "urn:microsoft:windows-azure:zumo",
        "ver": 2,
        "aud": aud,
        "uid": userId
    };
    var s2 = JSON.stringify(j2);
    var b1 = urlFriendly(base64(s1));
    var b2 = urlFriendly(base64(s2));
    var b3 = signature(b1 + "." + b2);
    return [b1, b2, b3].join(".");
};
`,
	"service/api/register.js": `exports.post = function (request, response) {
    var accounts = request.service.tables.getTable('accounts');
    var item = { email: request.body.email, password: request.body.password };
    var email = /^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,4}$/;
    if (!email.test(item.email)) {
        response.send(statusCodes.BAD_REQUEST, { message: 'Invalid email' });
        return;
    }
    if (!item.password || item.password.length < 7) {
        response.send(statusCodes.BAD_REQUEST, { message: 'Invalid password (at least 7 chars required)' });
        return;
    }
    accounts.where({ email: item.email }).read({
        success: function (results) {
            if (results.length > 0) {
                response.send(statusCodes.BAD_REQUEST, { message: 'This account already exists' });
                return;
            }
            var helper = require('../shared/jwthelper');
            item.salt = helper.createSalt();
            helper.hash(item.password, item.salt, function (err, h) {
                item.password = h;
                accounts.insert(item, {
                    success: function () {
                        // we don't want to return the hash and salt
                        delete item.password;
                        delete item.salt;
                        response.send(statusCodes.CREATED, item);
                    }
                });
            });
        }
    });
};
`,
	"service/api/login.js": `var masterKey = require('mobileservice-config').masterKey;
var aud = "Custom";

exports.post = function (request, response) {
    var accounts = request.service.tables.getTable('accounts');
    var item = { email: request.body.email, password: request.body.password };
    var helper = require('../shared/jwthelper.js');
    accounts.where({ email: item.email }).read({
        success: function (results) {
            if (results.length === 0) {
                response.send(statusCodes.UNAUTHORIZED, { message: "Incorrect username or password" });
                return;
            }
            var account = results[0];
            helper.hash(item.password, account.salt, function (err, h) {
                var incoming = h;
                if (helper.slowEquals(incoming, account.password)) {
                    var expiry = new Date().setUTCDate(new Date().getUTCDate() + 30);
                    var userId = aud + ":" + account.id;
                    response.send(statusCodes.OK, {
                        user: { userId: userId },
                        authenticationToken: helper.zumoJwt(expiry, aud, userId, masterKey)
                    });
                } else {
                    response.send(statusCodes.UNAUTHORIZED, { message: "Incorrect username or password" });
                }
            });
        },
        error: function (err) { response.send(500, { message: String(err) }); }
    });
};
`,
}

func TestCustomAuthApp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, customAuthApp)
		app := []string{"X-ZUMO-APPLICATION", appKey}

		expect(t, e.do("POST", "/api/register", `{"email":"ann@example.com","password":"s3cret-pass"}`), 401)
		expect(t, e.do("POST", "/api/register", `{"email":"ann@example.com","password":"short"}`, app...), 400, "at least 7 chars")
		r := e.do("POST", "/api/register", `{"email":"ann@example.com","password":"s3cret-pass"}`, app...)
		expect(t, r, 201, `"email":"ann@example.com"`)
		if strings.Contains(r.body, "salt") || strings.Contains(r.body, "password") {
			t.Fatalf("register leaked the hash: %s", r.body)
		}
		expect(t, e.do("POST", "/api/register", `{"email":"ann@example.com","password":"s3cret-pass"}`, app...), 400, "already exists")

		// The stored password is the tutorial's PBKDF2-SHA1 (1000 iterations, 32 bytes) of the password.
		rows := e.do("GET", "/tables/accounts", "", "X-ZUMO-MASTER", masterKey).list(t)
		if len(rows) != 1 || rows[0]["password"] == "s3cret-pass" || rows[0]["salt"] == "" {
			t.Fatalf("accounts: %v", rows)
		}

		expect(t, e.do("POST", "/api/login", `{"email":"ann@example.com","password":"wrong-pass"}`, app...), 401, "Incorrect")
		expect(t, e.do("POST", "/api/login", `{"email":"bob@example.com","password":"wrong-pass"}`, app...), 401, "Incorrect")
		r = e.do("POST", "/api/login", `{"email":"ann@example.com","password":"s3cret-pass"}`, app...)
		expect(t, r, 200, `"userId":"Custom:`)
		var login struct {
			User  struct{ UserID string }
			Token string `json:"authenticationToken"`
		}
		if err := json.Unmarshal([]byte(r.body), &login); err != nil {
			t.Fatal(err)
		}

		// The script's token verifies as Gatehouse's own tokens do: same key derivation, same
		// signature over the segments.
		caller, err := e.auth.Identify(auth.Credentials{Token: login.Token, HasToken: true})
		if err != nil {
			t.Fatalf("script token rejected: %v", err)
		}
		if caller.UserID() != login.User.UserID || caller.Level != auth.Authenticated {
			t.Fatalf("caller %+v", caller)
		}
		parts := strings.Split(login.Token, ".")
		mac := hmac.New(sha256.New, token.SigningKey(masterKey))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); parts[2] != want {
			t.Fatalf("signature %s, want %s", parts[2], want)
		}
		minted := e.token(login.User.UserID)
		if strings.Split(minted, ".")[0] != parts[0] {
			t.Fatalf("header segment differs from gatehouse token mint's")
		}

		// The token works on a table whose read permission is "authenticated".
		expect(t, e.do("GET", "/tables/notes", ""), 401)
		expect(t, e.do("POST", "/tables/notes", `{"text":"hi"}`, "X-ZUMO-AUTH", login.Token), 201)
		expect(t, e.do("GET", "/tables/notes", "", "X-ZUMO-AUTH", login.Token), 200, `"text":"hi"`)
		expect(t, e.do("GET", "/tables/notes", "", "X-ZUMO-AUTH", minted), 200, `"text":"hi"`)
	})
}
