// Runs one browser scenario against a running Gatehouse in headless Chromium (playwright-core with the
// system's Chromium, never a downloaded browser) and prints one JSON object on stdout.
//
// Usage: node js/browser.mjs SCENARIO
//   SCENARIO is a module js/scenarios/SCENARIO.mjs exporting `async function run(ctx)`; ctx has
//   { page, context, browser, args, env, log }. Its return value becomes `result` in the output.
// Environment:
//   GATEHOUSE_PAGE_URL     page to open first (the static page with the SDK bundle); required
//   GATEHOUSE_URL          Gatehouse base URL, passed on to the scenario as env.gatehouseURL
//   GATEHOUSE_ARGS         JSON handed to the scenario as ctx.args (default {})
//   GATEHOUSE_CHROMIUM     Chromium executable (default /usr/bin/chromium)
//   GATEHOUSE_E2E_TIMEOUT_MS  hard limit for the whole run (default 60000); then exit 3
// Output: {"ok":bool,"result":...,"error":"...","requests":[{method,url,headers,status}],
//          "console":["type: text"],"pageErrors":["..."]}
import { chromium } from 'playwright-core';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import fs from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const name = process.argv[2];
const out = { ok: false, result: null, error: '', requests: [], console: [], pageErrors: [] };
let printed = false;
function finish(code) {
  if (!printed) {
    printed = true;
    process.stdout.write(JSON.stringify(out) + '\n');
  }
  process.exitCode = code;
}

const hardLimit = Number(process.env.GATEHOUSE_E2E_TIMEOUT_MS || 60000);
const killer = setTimeout(() => {
  out.error = `browser.mjs: hard time limit of ${hardLimit} ms reached`;
  finish(3);
  process.exit(3);
}, hardLimit);
killer.unref();

if (!name || !/^[a-z0-9][a-z0-9_-]*$/i.test(name)) {
  out.error = 'usage: node js/browser.mjs SCENARIO (a module in js/scenarios/)';
  finish(2);
  process.exit(2);
}
const scenarioFile = path.join(here, 'scenarios', `${name}.mjs`);
const pageURL = process.env.GATEHOUSE_PAGE_URL;
if (!fs.existsSync(scenarioFile) || !pageURL) {
  out.error = !pageURL ? 'GATEHOUSE_PAGE_URL is not set' : `no scenario ${scenarioFile}`;
  finish(2);
  process.exit(2);
}

const executablePath = process.env.GATEHOUSE_CHROMIUM || '/usr/bin/chromium';
let browser;
const pending = new Set();
try {
  const { run } = await import(pathToFileURL(scenarioFile).href);
  const args = JSON.parse(process.env.GATEHOUSE_ARGS || '{}');
  browser = await chromium.launch({
    executablePath,
    headless: true,
    timeout: 30000,
    // As the machine notes prescribe: no sandbox as root, and no background traffic (the network is closed).
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage',
      // Extra names for origins on loopback: http://<anything>.gatehouse.test:PORT is 127.0.0.1:PORT.
      '--host-resolver-rules=MAP *.gatehouse.test 127.0.0.1',
    ],
  });
  const context = await browser.newContext();
  context.setDefaultTimeout(30000);
  context.setDefaultNavigationTimeout(30000);
  const page = await context.newPage();
  const watch = (p) => {
    p.on('console', (m) => out.console.push(`${m.type()}: ${m.text()}`));
    p.on('pageerror', (e) => out.pageErrors.push(String(e && e.stack || e)));
    const record = (r, failed) => {
      const done = (async () => {
        const res = failed ? null : await r.response().catch(() => null);
        const entry = { method: r.method(), url: r.url(), headers: await r.allHeaders().catch(() => ({})), status: res ? res.status() : 0 };
        if (failed) entry.failure = (r.failure() || {}).errorText || 'failed';
        out.requests.push(entry);
      })();
      pending.add(done);
      done.finally(() => pending.delete(done)).catch(() => {});
    };
    p.on('requestfinished', (r) => record(r, false));
    p.on('requestfailed', (r) => record(r, true));
  };
  watch(page);
  context.on('page', (p) => { if (p !== page) watch(p); });
  await page.goto(pageURL, { waitUntil: 'load' });
  await page.waitForFunction(() => !!(window.WindowsAzure && window.WindowsAzure.MobileServiceClient));
  const env = { gatehouseURL: process.env.GATEHOUSE_URL || '', pageURL };
  const log = (...a) => process.stderr.write(a.map(String).join(' ') + '\n');
  out.result = await run({ page, context, browser, args, env, log });
  await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 2000))]);
  out.ok = true;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  }
}
finish(out.ok ? 0 : 1);
// stdout is a pipe (written synchronously on Linux): exit now rather than wait for stray timers.
process.exit(process.exitCode);
