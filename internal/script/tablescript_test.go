package script_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/store"
	"github.com/gatehouse/gatehouse/internal/store/storetest"
)

var tableScriptApp = map[string]string{
	"datamodel.json": `{"tables":[
		{"name":"TodoItem","permissions":{"*":"user"}},
		{"name":"Plain","permissions":{"*":"public"}},
		{"name":"Audit","permissions":{"*":"admin"}},
		{"name":"Counter","permissions":{"*":"public"},"idType":"integer"}
	]}`,
	"table/Counter.delete.js": `function del(id, user, request) {
    if (typeof id !== 'number') { request.respond(500, 'id is a ' + typeof id); return; }
    request.execute();
}`,
	"table/Counter.read.js": `function read(query, user, request) {
    query.where({ hidden: false });
    request.execute();
}`,
	// Stamp the owner on insert and write an audit row from the script.
	"table/TodoItem.insert.js": `function insert(item, user, request) {
    if (item.text === 'forbidden') {
        request.respond(statusCodes.BAD_REQUEST, 'Text is not allowed');
        return;
    }
    item.userId = user.userId;
    request.execute({
        success: function () {
            tables.getTable('Audit').insert({ what: 'insert', who: user.userId, table: tables.current.getTableName() }, {
                success: function () { request.respond(); }
            });
        }
    });
}`,
	// Every caller sees only their own items.
	"table/TodoItem.read.js": `function read(query, user, request) {
    query.where({ userId: user.userId });
    request.execute();
}`,
	// Updates of completed items are refused; a conflict retries with the server's version.
	"table/TodoItem.update.js": `function update(item, user, request) {
    if (item.complete === true && item.text === undefined && request.parameters.strict === 'yes') {
        request.respond(statusCodes.BAD_REQUEST, 'Cannot complete without text');
        return;
    }
    request.execute({
        conflict: function (serverItem) {
            console.log('conflict on %s, retrying', serverItem.id);
            request.execute();
        }
    });
}`,
	"table/TodoItem.delete.js": `function del(id, user, request) {
    request.execute({
        success: function () { request.respond(statusCodes.OK, { deleted: id }); },
        error: function (err) { request.respond(err); }
    });
}`,
	// read with a callback that decorates results, query builders and includeTotalCount.
	"table/Plain.read.js": `function read(query, user, request) {
    if (request.parameters.top) { query.orderByDescending('n').take(2); }
    if (request.parameters.min) { query.where(function (min, since) { return this.n >= min && this.n !== 99 && this.__createdAt > since; }, Number(request.parameters.min), new Date(0)).where({ __deleted: false }).orderBy('n'); }
    request.execute({
        success: function (results) {
            results.forEach(function (r) { r.decorated = true; });
            request.respond();
        }
    });
}`,
}

func TestTableScripts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, tableScriptApp)
		ann := []string{"X-ZUMO-AUTH", e.token("Custom:ann")}
		bob := []string{"X-ZUMO-AUTH", e.token("Custom:bob")}

		r := e.do("POST", "/tables/TodoItem", `{"text":"milk"}`, ann...)
		expect(t, r, 201, `"userId":"Custom:ann"`, `"text":"milk"`, `"id":`)
		annID := r.json(t)["id"].(string)
		expect(t, e.do("POST", "/tables/TodoItem", `{"text":"bread"}`, bob...), 201, `"userId":"Custom:bob"`)
		expect(t, e.do("POST", "/tables/TodoItem", `{"text":"forbidden"}`, bob...), 400, `"Text is not allowed"`)

		audit := e.do("GET", "/tables/Audit", "", "X-ZUMO-MASTER", masterKey).list(t)
		if len(audit) != 2 || audit[0]["table"] != "TodoItem" {
			t.Fatalf("audit rows: %v", audit)
		}

		mine := e.do("GET", "/tables/TodoItem", "", ann...).list(t)
		if len(mine) != 1 || mine[0]["text"] != "milk" {
			t.Fatalf("ann sees %v", mine)
		}
		// A client filter cannot widen the script's restriction.
		if rows := e.do("GET", "/tables/TodoItem?$filter="+escape("userId eq 'Custom:bob' or true"), "", ann...).list(t); len(rows) != 1 || rows[0]["userId"] != "Custom:ann" {
			t.Fatalf("filter widened the script's where: %v", rows)
		}
		// Lookups go through the read script too.
		expect(t, e.do("GET", "/tables/TodoItem/"+annID, "", ann...), 200, `"milk"`)
		expect(t, e.do("GET", "/tables/TodoItem/"+annID, "", bob...), 404)
		// noScript with the master key bypasses the script; without the master key it is refused.
		if rows := e.do("GET", "/tables/TodoItem?noScript=true", "", "X-ZUMO-MASTER", masterKey).list(t); len(rows) != 2 {
			t.Fatalf("noScript read: %v", rows)
		}
		expect(t, e.do("GET", "/tables/TodoItem?noScript=true", "", ann...), 401)

		expect(t, e.do("PATCH", "/tables/TodoItem/"+annID+"?strict=yes", `{"complete":true}`, ann...), 400, "Cannot complete without text")
		// A stale version conflicts; the script's conflict handler retries with the server's version.
		r = e.do("PATCH", "/tables/TodoItem/"+annID, `{"text":"oat milk","__version":"AAAAAAAAAAE="}`, ann...)
		expect(t, r, 200, `"text":"oat milk"`)
		if !strings.Contains(e.logs.String(), "conflict on "+annID+", retrying") {
			t.Fatal("conflict handler did not run")
		}

		expect(t, e.do("DELETE", "/tables/TodoItem/"+annID, "", ann...), 200, `{"deleted":"`+annID+`"}`)
		expect(t, e.do("DELETE", "/tables/TodoItem/"+annID, "", ann...), 404)

		for _, n := range []string{"1", "2", "3"} {
			expect(t, e.do("POST", "/tables/Plain", `{"n":`+n+`}`), 201)
		}
		// Integer ids reach scripts as numbers; a narrowed lookup filters on the numeric id.
		cr := e.do("POST", "/tables/Counter", `{"hidden":false}`)
		expect(t, cr, 201)
		cid := fmt.Sprint(cr.json(t)["id"])
		expect(t, e.do("POST", "/tables/Counter", `{"hidden":true}`), 201)
		expect(t, e.do("GET", "/tables/Counter/"+cid, ""), 200, `"hidden":false`)
		expect(t, e.do("GET", "/tables/Counter/2", ""), 404)
		expect(t, e.do("DELETE", "/tables/Counter/"+cid, ""), 204)

		rows := e.do("GET", "/tables/Plain?top=1", "").list(t)
		if len(rows) != 2 || rows[0]["n"] != 3.0 || rows[0]["decorated"] != true {
			t.Fatalf("plain read: %v", rows)
		}
		rows = e.do("GET", "/tables/Plain?min=2", "").list(t)
		if len(rows) != 2 || rows[0]["n"] != 2.0 || rows[1]["n"] != 3.0 {
			t.Fatalf("where(function): %v", rows)
		}
		r = e.do("GET", "/tables/Plain?$inlinecount=allpages&$filter=n%20gt%201", "")
		expect(t, r, 200, `"count":2`, `"decorated":true`)
	})
}

func escape(s string) string { return strings.ReplaceAll(s, " ", "%20") }
