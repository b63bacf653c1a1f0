// Builds the browser bundle of azure-mobile-apps-client the way its own Gruntfile does
// (browserify, standalone global `WindowsAzure`), because the npm package ships only sources.
// Usage: node js/bundle.mjs OUT_FILE
import { createRequire } from 'node:module';
import { createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';

const require = createRequire(import.meta.url);
const browserify = require('browserify');

const out = process.argv[2];
if (!out) {
  console.error('usage: node bundle.mjs OUT_FILE');
  process.exit(2);
}
const entry = require.resolve('azure-mobile-apps-client');
const version = require('azure-mobile-apps-client/package.json').version;
const tmp = `${out}.tmp`;

await new Promise((resolve, reject) => {
  const ws = createWriteStream(tmp);
  ws.write(`// azure-mobile-apps-client v${version}, bundled by gatehouse e2e/js/bundle.mjs\n`);
  browserify(entry, { standalone: 'WindowsAzure' })
    .bundle()
    .on('error', reject)
    .pipe(ws)
    .on('finish', resolve)
    .on('error', reject);
});
await rename(tmp, out);
console.log(JSON.stringify({ file: out, version }));
