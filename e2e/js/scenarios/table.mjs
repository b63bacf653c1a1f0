// Scenario: table operations through the SDK's MobileServiceTable (client.getTable(name)).
// args: { token, userId, ops: [ {
//   name,                       // label echoed in the result
//   op,                         // "insert" | "update" | "del" | "lookup" | "read"
//   table,                      // table name
//   item,                       // insert/update/del: the object; del also accepts {id}
//   id,                         // lookup: the id
//   query,                      // read: a raw OData string ("$filter=done eq false"), or { where: {col: value} | "function source (this.x > 1)",
//                               //   whereArgs: [...], orderBy: [col...], orderByDescending: [col...],
//                               //   skip, take, select: [col...], includeTotalCount, includeDeleted }
//   parameters                  // extra query-string parameters (all ops)
// } ] }
// result: [ { name, ok, value, error, status, body } ] in order; a failed op is a result, not a throw.
// `value` is what the SDK resolved with (for read: {items, totalCount} since the SDK puts the count
// on the array).
export async function run({ page, args, env }) {
  return page.evaluate(async ({ a, gatehouseURL }) => {
    const client = new window.WindowsAzure.MobileServiceClient(gatehouseURL);
    if (a.token) {
      client.currentUser = { userId: a.userId || null, mobileServiceAuthenticationToken: a.token };
    }
    const results = [];
    for (const o of a.ops || []) {
      const r = { name: o.name, ok: false, value: null, error: null, status: null, body: null };
      try {
        const table = client.getTable(o.table);
        let v;
        switch (o.op) {
          case 'insert': v = await table.insert(o.item, o.parameters); break;
          case 'update': v = await table.update(o.item, o.parameters); break;
          case 'del': v = await table.del(o.item, o.parameters); break;
          case 'lookup': v = await table.lookup(o.id, o.parameters); break;
          case 'read': {
            if (typeof o.query === 'string') { // a raw OData query string: "$filter=...&$top=2"
              const items = await table.read(o.query, o.parameters);
              v = { items: Array.from(items), totalCount: items.totalCount === undefined ? null : items.totalCount };
              break;
            }
            const q = o.query || {};
            let query = table; // table.where(...) etc. return a Query whose read() runs on this table
            if (q.where !== undefined) {
              const w = typeof q.where === 'string' ? new Function('return ' + q.where)() : q.where;
              query = query.where(w, ...(q.whereArgs || []));
            }
            for (const c of q.orderBy || []) query = query.orderBy(c);
            for (const c of q.orderByDescending || []) query = query.orderByDescending(c);
            if (q.skip !== undefined) query = query.skip(q.skip);
            if (q.take !== undefined) query = query.take(q.take);
            if (q.select) query = query.select(...q.select);
            if (q.includeTotalCount) query = query.includeTotalCount();
            const params = q.includeDeleted ? Object.assign({ __includeDeleted: true }, o.parameters) : o.parameters;
            const items = await query.read(params);
            v = { items: Array.from(items), totalCount: items.totalCount === undefined ? null : items.totalCount };
            break;
          }
          default: throw new Error('unknown op ' + o.op);
        }
        r.ok = true;
        r.value = v === undefined ? null : v;
      } catch (e) {
        r.error = String((e && e.message) || e);
        if (e && e.request) {
          r.status = e.request.status;
          r.body = e.request.responseText;
        }
      }
      results.push(r);
    }
    return results;
  }, { a: args, gatehouseURL: env.gatehouseURL });
}
