// Scenario: a sequence of calls made in the page, through the SDK or plain fetch.
// args: { calls: [ {
//   name,                      // label echoed in the result
//   api,                       // SDK: client.invokeApi(api, {method, body, headers}); an absolute URL
//                              //   or a path starting with "/" (resolved against Gatehouse) is used as is,
//                              //   anything else is a custom API name (/api/NAME)
//   method, body, headers,
//   token, userId,             // SDK: client.currentUser = {userId, mobileServiceAuthenticationToken: token}
//   fetch, mode                // instead of api: window.fetch(URL or "/path", {mode}) without the SDK
// } ] }
// result: [ { name, status, body, error, type } ] in call order; SDK failures are results, not throws.
export async function run({ page, args, env }) {
  return page.evaluate(async ({ calls, gatehouseURL }) => {
    const abs = (u) => (u.startsWith('/') ? gatehouseURL.replace(/\/$/, '') + u : u);
    const results = [];
    for (const c of calls) {
      const r = { name: c.name, status: null, body: null, error: null, type: null };
      try {
        if (c.fetch) {
          const res = await fetch(abs(c.fetch), { mode: c.mode || 'cors', method: c.method || 'GET' });
          r.type = res.type;
          r.status = res.status;
          r.body = res.type === 'opaque' ? null : await res.text();
        } else {
          const client = new window.WindowsAzure.MobileServiceClient(gatehouseURL);
          if (c.token) {
            client.currentUser = { userId: c.userId || null, mobileServiceAuthenticationToken: c.token };
          }
          const api = c.api.startsWith('/') ? abs(c.api) : c.api;
          const res = await client.invokeApi(api, { method: c.method || 'GET', body: c.body, headers: c.headers });
          r.status = res.status;
          r.body = res.responseText;
        }
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
  }, { calls: args.calls || [], gatehouseURL: env.gatehouseURL });
}
