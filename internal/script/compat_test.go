package script_test

import (
	"context"
	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
	"github.com/gatehouse/gatehouse/internal/user"
	"time"

	"github.com/gatehouse/gatehouse/internal/script"
	"strings"
	"testing"
)

// Idioms of the original runtime (azure-mobile-services 1.0.0 on Node 0.10 and Express 3) that real
// apps rely on; each case is the original's answer.
var compatApp = map[string]string{
	"api/compat.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/legacy.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/legacy.js":   "exports.get = function (req, res) { res.send(200, { t: Date.UTC(2012, 08, 1), n: 09.5 + 010, s: '08' }); };",
	"api/compat.js": `exports.get = function (req, res) {
    if (req.query.mode === 'status') { res.send(req.query.status, { via: 'string status' }); return; }
    if (req.query.mode === 'bodyfirst') { res.send('500', 201); return; }
    if (req.query.mode === 'one') { res.send('500'); return; }
    if (req.query.mode === 'body') { res.send(200, { type: typeof req.body, falsy: !req.body, raw: req.rawBody }); return; }
    if (req.query.mode === 'push') { res.send(200, { hub: typeof push.send, wns: typeof push.wns, apns: typeof push.apns.send, keys: Object.keys(push).sort() }); return; }
    if (req.query.mode === 'end') { res.send(200, { ok: true }); var r = res.end(); console.log('end after send returned ' + r); return; }
    res.send(200, {});
};`,
}

func TestCompatResponseSend(t *testing.T) {
	e := newEnv(t, nil, compatApp)
	// Express 3: send(status, body) accepted a numeric string as the status.
	expect(t, e.do("GET", "/api/compat?mode=status&status=500", ""), 500, `{"via":"string status"}`)
	expect(t, e.do("GET", "/api/compat?mode=status&status=404", ""), 404, `{"via":"string status"}`)
	// A non-numeric string is no status (Express handed it to Node, which threw); the default stays.
	expect(t, e.do("GET", "/api/compat?mode=status&status=abc", ""), 200)
	// send(body, number): the number is the status, the string the body.
	r := e.do("GET", "/api/compat?mode=bodyfirst", "")
	expect(t, r, 201)
	if r.body != "500" {
		t.Fatalf("send('500', 201) body %q", r.body)
	}
	// One string argument is a body, never a status.
	r = e.do("GET", "/api/compat?mode=one", "")
	expect(t, r, 200)
	if r.body != "500" {
		t.Fatalf("send('500') body %q", r.body)
	}
	// No body: the original's parsers left '' (falsy); rawBody is Gatehouse's addition.
	expect(t, e.do("GET", "/api/compat?mode=body", ""), 200, `{"type":"string","falsy":true,"raw":""}`)
	// push without configuration is the original's legacy push: direct clients, no hub send.
	expect(t, e.do("GET", "/api/compat?mode=push", ""), 200, `{"hub":"undefined","wns":"object","apns":"function","keys":["apns","gcm","mpns","wns"]}`)
	// Node 0.10: end() after send() returned false silently; no error is logged.
	expect(t, e.do("GET", "/api/compat?mode=end", ""), 200, `{"ok":true}`)
	if !strings.Contains(e.logs.String(), "end after send returned false") {
		t.Fatalf("end() after send() must return false:\n%s", e.logs.String())
	}
	if strings.Contains(e.logs.String(), "Can't set headers") {
		t.Fatalf("end() after send() threw:\n%s", e.logs.String())
	}
}

// Sloppy-mode decimals with a leading zero load as in Node; real syntax errors still stop loading.
func TestCompatLegacyDecimals(t *testing.T) {
	e := newEnv(t, nil, compatApp)
	expect(t, e.do("GET", "/api/legacy", ""), 200, `{"t":1346457600000,"n":17.5,"s":"08"}`)
}

func TestCompatLegacyDecimalsKeepSyntaxErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"api/bad.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
		"api/bad.js":   "exports.get = function (req, res) {\n  var x = 08;\n  res.send(200 x);\n};",
	})
	_, err := script.New(dir, script.Options{Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "bad.js") || !strings.Contains(err.Error(), "3:") {
		t.Fatalf("a real syntax error must still stop loading, naming file and line: %v", err)
	}
}

var compatTableApp = map[string]string{
	"datamodel.json": `{"tables":[{"name":"Movie","permissions":{"*":"public"}},{"name":"Other","permissions":{"*":"public"}}]}`,
	// query.id on lookups, and a hand-built one-element array answered to a lookup.
	"table/Movie.read.js": `function read(query, user, request) {
    if (request.parameters.mode === 'byhand' && query.id) {
        tables.getTable('Movie').where({ id: query.id }).read({ success: function (rows) { request.respond(200, rows); } });
        return;
    }
    if (request.parameters.mode === 'two') {
        tables.getTable('Movie').read({ success: function (rows) { request.respond(200, rows); } });
        return;
    }
    if (request.parameters.mode === 'project') {
        query.select(function () { return { id: this.id, label: this.title + ' (' + this.year + ')' }; });
    }
    if (request.parameters.ids) {
        query.where(function (ids) { return this.id in ids; }, request.parameters.ids.split(','));
    }
    if (request.parameters.none) {
        query.where(function (ids) { return this.id in ids; }, []);
    }
    if (request.parameters.objs) {
        query.where(function (ids) { return this.year in ids; }, [{ y: 1999 }, { y: 2001 }]);
    }
    if (request.parameters.old) {
        query.where(function () { return this.released.getYear() < 100 && this.title.replace('The ', '') === 'Matrix'; });
    }
    request.execute();
}`,
	"api/movies.json": `{"routes":{"*":{"*":{"permission":"public"}}}}`,
	"api/movies.js": `exports.get = function (req, res) {
    tables.getTable('Movie').select(function () { return this.title.toUpperCase(); }).orderBy('year')
        .read({ success: function (titles) { res.send(200, titles); } });
};`,
}

func TestCompatReadScriptQueries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, compatTableApp)
		for _, m := range []string{
			`{"id":"m1","title":"The Matrix","year":1999,"released":"1999-03-31T00:00:00Z"}`,
			`{"id":"m2","title":"Memento","year":2000,"released":"2000-10-11T00:00:00Z"}`,
			`{"id":"m3","title":"Amelie","year":2001,"released":"2001-04-25T00:00:00Z"}`,
		} {
			expect(t, e.do("POST", "/tables/Movie?noScript=true", m, "X-ZUMO-MASTER", masterKey), 201)
		}
		// query.id is set on a lookup; respond(200, [x]) to a lookup answers x.
		r := e.do("GET", "/tables/Movie/m2?mode=byhand", "")
		expect(t, r, 200, `"title":"Memento"`)
		if strings.HasPrefix(strings.TrimSpace(r.body), "[") {
			t.Fatalf("lookup answered an array: %s", r.body)
		}
		// Several items answered to a lookup: the original's script error.
		expect(t, e.do("GET", "/tables/Movie/m2?mode=two", ""), 500)
		if !strings.Contains(e.logs.String(), "Cannot return more than one item for a query by id.") {
			t.Fatalf("no script error logged:\n%s", e.logs.String())
		}
		// Projections, on reads and lookups.
		r = e.do("GET", "/tables/Movie?mode=project&$orderby=year", "")
		expect(t, r, 200, `[{"id":"m1","label":"The Matrix (1999)"},{"id":"m2","label":"Memento (2000)"},{"id":"m3","label":"Amelie (2001)"}]`)
		expect(t, e.do("GET", "/tables/Movie/m3?mode=project", ""), 200, `{"id":"m3","label":"Amelie (2001)"}`)
		expect(t, e.do("GET", "/api/movies", ""), 200, `["THE MATRIX","MEMENTO","AMELIE"]`)
		// `in` with an array argument, of values or of single-field objects; an empty array matches nothing.
		if rows := e.do("GET", "/tables/Movie?ids=m1,m3&$orderby=id", "").list(t); len(rows) != 2 || rows[0]["id"] != "m1" || rows[1]["id"] != "m3" {
			t.Fatalf("in: %v", rows)
		}
		if rows := e.do("GET", "/tables/Movie?none=1", "").list(t); len(rows) != 0 {
			t.Fatalf("in []: %v", rows)
		}
		if rows := e.do("GET", "/tables/Movie?objs=1&$orderby=year", "").list(t); len(rows) != 2 || rows[1]["id"] != "m3" {
			t.Fatalf("in objects: %v", rows)
		}
		// getYear is years since 1900; replace is translated.
		if rows := e.do("GET", "/tables/Movie?old=1", "").list(t); len(rows) != 1 || rows[0]["id"] != "m1" {
			t.Fatalf("getYear/replace: %v", rows)
		}
	})
}

// user.getIdentities, in its callback and options forms, reads the users directory: the linked
// identities with their claims and (when kept) provider access tokens, keyed by provider.
func TestCompatGetIdentitiesFromDirectory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		sealer, err := user.NewSealer("provider tokens", masterKey)
		if err != nil {
			t.Fatal(err)
		}
		dir, err := user.NewDirectory(user.NewSQL(db), user.Options{KeepProviderTokens: true, Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		u, err := dir.Login(ctx, user.LinkInput{Provider: "Google", Issuer: "https://accounts.google.com", Subject: "1234",
			Claims: map[string]any{"email": "ann@example.com"}, Tokens: &user.ProviderTokens{AccessToken: "ya29.secret", RefreshToken: "1//keep-me-server-side"}})
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, db, map[string]string{
			"api/who.json": `{"routes":{"*":{"*":{"permission":"user"}}}}`,
			"api/who.js": `exports.get = function (req, res) {
    if (req.query.form === 'callback') {
        req.user.getIdentities(function (err, ids) { res.send(200, { err: err, ids: ids }); });
        return;
    }
    req.user.getIdentities({ success: function (ids) { res.send(200, ids); }, error: function (e) { res.send(500, e.message); } });
};`,
		}, func(o *script.Options) { o.Identities = dir })
		auth := []string{"X-ZUMO-AUTH", e.token(u.ID)}
		want := `{"google":{"accessToken":"ya29.secret","email":"ann@example.com","userId":"Google:1234"}}`
		r := e.do("GET", "/api/who", "", auth...)
		expect(t, r, 200, want)
		if strings.Contains(r.body, "keep-me-server-side") {
			t.Fatalf("refresh token reached a script: %s", r.body)
		}
		expect(t, e.do("GET", "/api/who?form=callback", "", auth...), 200, `{"err":null,"ids":`+want+`}`)
		// A custom-auth user has no linked identity: the token's own (none) as before.
		expect(t, e.do("GET", "/api/who", "", "X-ZUMO-AUTH", e.token("Custom:42")), 200, `null`)
	})
}
