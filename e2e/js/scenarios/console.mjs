// The admin console in headless Chromium: first-run setup, sign-in throttling, tables, rows (insert,
// edit, a conflicting edit, delete) seen through /tables, a permission change enforced by /tables, a
// script with a syntax error (rejected) then a correct one (served), a job run, a user disabled, the
// audit trail; axe-core on every page (no serious or critical violation), screenshots and figures.
//
// args: { setup, base, masterKey, appKey, userId, userToken, shots }
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export async function run({ browser, args, log }) {
  const base = args.base; // http://127.0.0.1:PORT
  const out = { pages: {}, axe: {}, steps: [] };
  // axe is injected as a script; the console's CSP would refuse it, so this context bypasses CSP
  // (the CSP itself is checked by the Go tests).
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  ctx.setDefaultTimeout(20000);
  const page = await ctx.newPage();
  page.on('dialog', (d) => d.accept());
  const step = (s) => { out.steps.push(s); log('step', s); };

  const api = async (method, p, { key = args.appKey, master = false, body, token } = {}) => {
    const headers = { 'ZUMO-API-VERSION': '2.0.0' };
    if (master) headers['X-ZUMO-MASTER'] = args.masterKey; else if (key) headers['X-ZUMO-APPLICATION'] = key;
    if (token) headers['X-ZUMO-AUTH'] = token;
    if (body) headers['Content-Type'] = 'application/json';
    const r = await fetch(base + p, { method, headers, body: body ? JSON.stringify(body) : undefined });
    const text = await r.text();
    return { status: r.status, body: text };
  };

  // Figures and accessibility of the page now shown.
  const check = async (name) => {
    await page.waitForLoadState('load');
    const fig = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const paint = performance.getEntriesByType('paint').find((p) => p.name === 'first-contentful-paint');
      let bytes = nav ? nav.transferSize || nav.encodedBodySize : 0;
      for (const r of performance.getEntriesByType('resource')) bytes += r.transferSize || r.encodedBodySize;
      return { bytes, fcp: paint ? paint.startTime : null, interactive: nav ? nav.domInteractive : null, load: nav ? nav.loadEventEnd : null };
    });
    // Resources may come from the memory cache (transferSize 0): count their size once.
    const html = await page.content();
    fig.htmlBytes = html.length;
    out.pages[name] = fig;
    await page.addScriptTag({ content: axeSource });
    const res = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
    });
    out.axe[name] = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    if (args.shots) {
      await page.screenshot({ path: path.join(args.shots, name + '.png'), fullPage: false });
    }
  };
  const notice = async () => (await page.locator('.notice').allTextContents()).join(' ');
  const problem = async () => (await page.locator('.problem').allTextContents()).join(' ');

  step('setup');
  await page.goto(args.setup);
  await check('setup');
  await page.fill('#email', 'owner@example.com');
  await page.fill('#password', 'correct horse battery');
  await page.fill('#confirm', 'correct horse battery');
  await page.click('button[type=submit]');
  await page.waitForURL(/\/console\/data/).catch(async (e) => { log(page.url(), (await page.content()).slice(0, 3000)); throw e; });
  out.setupNotice = await notice();

  step('a second use of the setup link');
  const p2 = await ctx.newPage();
  const r2 = await p2.goto(args.setup);
  out.setupReuse = r2.status();
  await p2.close();

  step('sign-in throttling');
  {
    const c2 = await browser.newContext();
    const p = await c2.newPage();
    const statuses = [];
    for (let i = 0; i < 10; i++) {
      const r = await p.goto(base + '/console/signin');
      if (i === 0) out.signinStatus = r.status();
      await p.fill('#email', 'nobody@example.com');
      await p.fill('#password', 'wrong password ' + i);
      const [resp] = await Promise.all([p.waitForNavigation(), p.click('button[type=submit]')]);
      statuses.push(resp.status());
      if (resp.status() === 429) break;
    }
    out.throttle = statuses;
    out.throttleText = await p.locator('.problem').textContent();
    await c2.close();
  }

  step('sign-in page audit');
  {
    const c3 = await browser.newContext({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
    const p = await c3.newPage();
    await p.goto(base + '/console/signin');
    await p.addScriptTag({ content: axeSource });
    const res = await p.evaluate(async () => (await window.axe.run(document)).violations.map((v) => ({ id: v.id, impact: v.impact })));
    out.axe.signin = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    if (args.shots) await p.screenshot({ path: path.join(args.shots, 'signin.png') });
    await c3.close();
  }

  step('create a table');
  await page.goto(base + '/console/schema');
  await check('schema');
  await page.fill('#name', 'Todo');
  await page.check('input[name=softDelete]');
  await page.fill('#col0', 'title');
  await page.fill('#col1', 'done');
  await page.selectOption('#type1', 'boolean');
  await page.click('form[action$="/console/schema"] button[type=submit]');
  await page.waitForURL(/\/console\/schema\/Todo/);
  await check('table');
  out.tablesAfterCreate = (await api('GET', '/tables/Todo')).status;

  step('insert a row');
  await page.goto(base + '/console/data/Todo/new');
  await page.fill('#f-title', 'Buy <b>milk</b> <script>alert(1)</script>');
  await page.uncheck('input[name="null.title"]');
  await page.selectOption('#f-done', 'false');
  await page.uncheck('input[name="null.done"]');
  await page.click('form.edit button[type=submit]');
  await page.waitForURL(/\/console\/data\/Todo\?notice/);
  await check('data-browse');
  let rows = JSON.parse((await api('GET', '/tables/Todo')).body);
  out.inserted = rows.map((r) => r.title);
  const id = rows[0].id;

  step('edit a row');
  await page.goto(base + '/console/data/Todo/row/' + encodeURIComponent(id));
  await check('data-row');
  await page.fill('#f-title', 'Buy oat milk');
  await page.click('form.edit button[type=submit]');
  await page.waitForURL(/notice=Row\+saved/);
  out.edited = JSON.parse((await api('GET', '/tables/Todo/' + id)).body).title;

  step('a conflicting edit');
  await page.goto(base + '/console/data/Todo/row/' + encodeURIComponent(id));
  await page.fill('#f-title', 'mine');
  await api('PATCH', '/tables/Todo/' + id, { body: { title: 'theirs' } });
  await page.click('form.edit button[type=submit]');
  await page.waitForSelector('#conflict-h');
  out.conflictShown = await page.locator('.conflict').textContent();
  await check('data-conflict');
  await page.click('.conflict button[type=submit]');
  await page.waitForURL(/notice=Row\+saved/);
  out.afterOverwrite = JSON.parse((await api('GET', '/tables/Todo/' + id)).body).title;

  step('delete a row');
  await page.goto(base + '/console/data/Todo');
  await page.click(`button[aria-label="Delete row ${id}"]`);
  await page.waitForURL(/notice=Row/);
  out.afterDelete = JSON.parse((await api('GET', '/tables/Todo')).body).length;

  step('filter error');
  await page.goto(base + "/console/data/Todo?filter=" + encodeURIComponent("title eq 'x"));
  out.filterError = await page.locator('#filter-error').textContent();

  step('change a permission');
  await page.goto(base + '/console/schema/Todo');
  await page.selectOption('#perm-read', 'admin');
  await page.click('form:has(input[value=permissions]) button[type=submit]');
  await page.waitForURL(/notice=Saved/);
  out.readAfterPermission = (await api('GET', '/tables/Todo')).status;
  out.readAsMaster = (await api('GET', '/tables/Todo', { master: true })).status;

  step('edit a script');
  await page.goto(base + '/console/scripts');
  await check('scripts');
  await page.goto(base + '/console/scripts/table/items.insert.js');
  await page.fill('#source', 'function insert(item, user, request) {\n  item.tag = "new"\n  request.execute(;\n}\n');
  await page.click('form.editor button[type=submit]');
  await page.waitForSelector('#syntax-error');
  out.syntaxError = await page.locator('#syntax-error').textContent();
  await check('script-error');
  out.oldServes = JSON.parse((await api('POST', '/tables/Items', { body: { title: 'a' } })).body).tag;
  await page.fill('#source', 'function insert(item, user, request) {\n  item.tag = "new";\n  request.execute();\n}\n');
  await page.click('form.editor button[type=submit]');
  await page.waitForURL(/notice=Saved/);
  out.newServes = JSON.parse((await api('POST', '/tables/Items', { body: { title: 'b' } })).body).tag;
  // The edit is marked, with its history; reverting serves the deployed file again.
  await check('script-edited');
  out.editedMark = await page.locator('#state-h ~ p').first().textContent();
  out.historyRows = await page.locator('#hist-h ~ div table tbody tr').count();
  await page.click('form:has(input[name=do][value=revert]) button[type=submit]');
  await page.waitForURL(/notice=Reverted/);
  out.afterRevert = JSON.parse((await api('POST', '/tables/Items', { body: { title: 'c' } })).body).tag;

  step('run a job');
  await page.goto(base + '/console/jobs');
  await check('jobs');
  await page.click('button[aria-label="Run now: cleanup"]');
  await page.waitForURL(/notice=Job/);
  for (let i = 0; i < 20; i++) {
    await page.goto(base + '/console/jobs/cleanup');
    const t = await page.locator('#hist-h ~ div table tbody').textContent().catch(() => '');
    if (/succeeded|failed/.test(t)) { out.jobHistory = t; break; }
    await page.waitForTimeout(250);
  }

  step('schedule a job');
  await page.goto(base + '/console/jobs');
  await page.fill('#every-cleanup', '15m');
  await page.click('form[action$="/jobs/cleanup/schedule"] button:not([name])');
  await page.waitForURL(/notice=The\+schedule/);
  out.jobSchedule = JSON.parse((await api('GET', '/admin/jobs/cleanup/schedule', { master: true })).body);

  step('disable a user');
  await page.goto(base + '/console/users');
  await check('users');
  await page.goto(base + '/console/users/' + encodeURIComponent(args.userId));
  await check('user');
  out.userBefore = (await api('GET', '/.auth/me', { token: args.userToken, key: '' })).status;
  await page.click('form[action$="/disable"] button');
  await page.waitForURL(/notice=User/);
  for (let i = 0; i < 20; i++) {
    out.userAfter = (await api('GET', '/.auth/me', { token: args.userToken, key: '' })).status;
    if (out.userAfter === 401) break;
    await page.waitForTimeout(250);
  }

  step('import accounts');
  await page.goto(base + '/console/users');
  await page.click('summary:has-text("Import accounts")');
  await page.setInputFiles('#file', { name: 'people.csv', mimeType: 'text/csv',
    buffer: Buffer.from('email,email_verified\nimported@example.com,true\nann@example.com,\nnot an address,\n') });
  await page.click('form[action$="/users/import"] button[type=submit]');
  await page.waitForSelector('#import-h');
  out.importReport = await page.locator('main').textContent();
  await check('users-import');

  step('keys, logs, account');
  await page.goto(base + '/console/keys');
  await check('keys');
  await page.goto(base + '/console/logs');
  await check('logs');
  // The live tail is pushed: a request made now appears without reloading.
  await page.waitForFunction(() => /Following/.test(document.getElementById('tail-state').textContent), null, { timeout: 10000 });
  const marker = '/tables/LiveTail' + Date.now();
  const sent = Date.now();
  await api('GET', marker);
  try {
    await page.waitForFunction((m) => document.getElementById('tail').textContent.includes(m), marker, { timeout: 10000 });
    out.liveTailMs = Date.now() - sent;
  } catch (err) {
    out.liveTailMs = -1;
  }
  await page.goto(base + '/console/account');
  await check('account');

  step('audit');
  await page.goto(base + '/console/audit');
  await check('audit');
  out.audit = await page.locator('table.audit tbody').textContent();

  step('phone');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(base + '/console/data/Todo?deleted=1');
  out.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (args.shots) await page.screenshot({ path: path.join(args.shots, 'phone-data.png') });

  step('sign out');
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(base + '/console/data');
  await page.click('.signout button');
  await page.waitForURL(/\/console\/signin/);
  const r = await page.goto(base + '/console/data');
  out.afterSignOut = page.url();
  await ctx.close();
  return out;
}
