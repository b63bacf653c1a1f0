// Scenario: a Mobile Apps client registers this browser for push through the SDK's Push module
// (client.push.register → PUT /push/installations/{installationId}), then inserts rows whose insert
// script sends to it.
// args: { token, userId, platform, pushChannel, templates, table, items: [ {...} ], unregister }
// result: { installationId, inserted: [ids], unregistered }
export async function run({ page, args, env }) {
  return page.evaluate(async ({ a, gatehouseURL }) => {
    const client = new window.WindowsAzure.MobileServiceClient(gatehouseURL);
    if (a.token) {
      client.currentUser = { userId: a.userId || null, mobileServiceAuthenticationToken: a.token };
    }
    await client.push.register(a.platform, a.pushChannel, a.templates);
    const inserted = [];
    for (const item of a.items || []) {
      const v = await client.getTable(a.table).insert(item);
      inserted.push(v.id);
    }
    let unregistered = false;
    if (a.unregister) {
      await client.push.unregister(a.pushChannel);
      unregistered = true;
    }
    return { installationId: client.push.installationId, inserted, unregistered };
  }, { a: args, gatehouseURL: env.gatehouseURL });
}
