// Provider login through Gatehouse with a real OpenID provider (js/oidc-op.mjs).
//
// args: { user, secureURL, steps: ["sdk", "redirect-v1", "redirect-v2"] }
//   sdk          the official SDK's client.login("acme") (popup, completion by postMessage), then a
//                per-user table insert and read with the token it got
//   redirect-*   a top-level navigation to /login/acme or /.auth/login/acme; the result is the final
//                URL (…/done#token=…)
// Gatehouse is behind a TLS proxy with a self-signed certificate (the SDK forces https for login), so
// the scenario opens its own context that accepts it.
export async function run({ browser, args, env, log }) {
  const providerLogin = async (p) => {
    try {
      await p.waitForSelector('input[name="login"]', { timeout: 15000 });
    } catch (e) {
      log('provider page', p.url(), (await p.content().catch(() => '')).slice(0, 2000));
      throw e;
    }
    await p.fill('input[name="login"]', args.user);
    await p.fill('input[name="password"]', 'any password');
    await p.click('button[type="submit"]');
    await p.waitForSelector('input[name="prompt"][value="consent"]', { state: 'attached' });
    await p.click('button[type="submit"]');
  };
  const out = {};
  for (const step of args.steps) {
    // A fresh browser profile per step: no provider session carries over.
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    ctx.setDefaultTimeout(30000);
    if (step === 'sdk') {
      const page = await ctx.newPage();
      await page.goto(env.pageURL, { waitUntil: 'load' });
      await page.waitForFunction(() => !!(window.WindowsAzure && window.WindowsAzure.MobileServiceClient));
      const popupDone = ctx.waitForEvent('page').then(providerLogin).catch((e) => log('popup:', e));
      out.sdk = await page.evaluate(async ({ url }) => {
        const client = new window.WindowsAzure.MobileServiceClient(url);
        try {
          const user = await client.login('acme');
          const notes = client.getTable('notes');
          await notes.insert({ text: 'hello from ' + user.userId });
          const rows = await notes.read();
          return { userId: user.userId, token: user.mobileServiceAuthenticationToken, rows: rows.map((r) => r.text) };
        } catch (e) {
          return { error: String(e && (e.message || e)) };
        }
      }, { url: args.secureURL });
      await popupDone;
      await page.close();
    } else {
      const path = step === 'redirect-v1' ? '/login/acme' : '/.auth/login/acme?session_mode=token';
      const page = await ctx.newPage();
      const done = page.waitForURL(/\/done#/, { waitUntil: 'commit' });
      await page.goto(args.secureURL + path, { waitUntil: 'commit' });
      await providerLogin(page);
      await done;
      out[step] = page.url();
      await page.close();
    }
    await ctx.close();
  }
  return out;
}
