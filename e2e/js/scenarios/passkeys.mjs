// Passkeys end to end on Gatehouse's own passkeys page (/.auth/passkeys), with a virtual CTAP2
// authenticator (resident keys, user verification) added through the Chrome DevTools Protocol.
//
// args: { email, password, passkeysURL } — passkeysURL is Gatehouse's page, opened in a new tab
// (the harness's first page is the SDK page on another origin).
// Steps: create an account, sign in with the password, register a passkey, sign in passwordless,
// register a second one, password + passkey as the second factor, a stale assertion (counter
// behind the stored one) refused, a challenge answered from another browser profile refused,
// removal. The result holds the tokens and answers for the Go side to check.
export async function run({ context, browser, args, log }) {
  const page = await context.newPage();
  await page.goto(args.passkeysURL, { waitUntil: 'load' });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const authOpts = { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true } };
  const first = await cdp.send('WebAuthn.addVirtualAuthenticator', authOpts);
  await page.waitForFunction(() => !!window.gatehousePasskeys);
  const part1 = await page.evaluate(async ({ email, password }) => {
    const gp = window.gatehousePasskeys;
    const r = {};
    const post = (path, body, token) => fetch('/.auth/login/custom' + path, {
      method: 'POST', headers: Object.assign({ 'Content-Type': 'application/json' }, token ? { 'X-ZUMO-AUTH': token } : {}), body: JSON.stringify(body),
    });
    r.register = (await post('/register', { email, password })).status;
    r.passwordLogin = await gp.passwordSignIn(email, password);
    const pwdToken = gp.state.token;
    r.passkey1 = await gp.register('Laptop', pwdToken);
    // Passwordless: the browser picks the discoverable credential.
    r.passwordless = await gp.signIn();
    const mfaToken = r.passwordless.authenticationToken;
    // A second passkey needs a multi-factor token now; a password-only one is refused.
    try { await gp.register('Phone', pwdToken); r.secondWithPwd = 'accepted'; } catch (e) { r.secondWithPwd = e.message; }
    // This authenticator holds the first passkey (excluded from a new registration): the second one
    // goes on another device.
    try { await gp.register('Phone', mfaToken); r.sameDevice = 'accepted'; } catch (e) { r.sameDevice = e.name; }
    r.mfaToken = mfaToken;
    return r;
  }, args);
  await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: first.authenticatorId });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', authOpts);
  const out = await page.evaluate(async ({ email, password, r }) => {
    const gp = window.gatehousePasskeys;
    const mfaToken = r.mfaToken;
    const post = (path, body, token) => fetch('/.auth/login/custom' + path, {
      method: 'POST', headers: Object.assign({ 'Content-Type': 'application/json' }, token ? { 'X-ZUMO-AUTH': token } : {}), body: JSON.stringify(body),
    });
    r.passkey2 = await gp.register('Phone', mfaToken);
    // Password, then the passkey as the second factor.
    r.challenge = await gp.passwordSignIn(email, password);
    r.secondFactor = await gp.signIn(r.challenge.mfaToken);

    // A stale assertion: obtained first, answered after a newer one was accepted (its counter is
    // behind the stored one).
    const begin = async () => (await (await post('/passkeys/login', {})).json());
    const toReq = (pk) => {
      const d = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
      return { ...pk, challenge: d(pk.challenge) };
    };
    const enc = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const asJSON = (c) => ({ id: c.id, rawId: enc(c.rawId), type: c.type, clientExtensionResults: {}, response: {
      clientDataJSON: enc(c.response.clientDataJSON), authenticatorData: enc(c.response.authenticatorData),
      signature: enc(c.response.signature), userHandle: enc(c.response.userHandle) } });
    const b1 = await begin();
    const old = asJSON(await navigator.credentials.get({ publicKey: toReq(b1.publicKey) }));
    r.newer = (await gp.signIn()).authenticationToken ? 'ok' : 'failed';
    const stale = await post('/passkeys/login/finish', { challengeId: b1.challengeId, credential: old });
    r.stale = { status: stale.status, body: await stale.json() };
    // Replaying an accepted answer: its challenge is spent.
    const b2 = await begin();
    const fresh = asJSON(await navigator.credentials.get({ publicKey: toReq(b2.publicKey) }));
    r.fresh = (await post('/passkeys/login/finish', { challengeId: b2.challengeId, credential: fresh })).status;
    const replay = await post('/passkeys/login/finish', { challengeId: b2.challengeId, credential: fresh });
    r.replay = { status: replay.status, body: await replay.json() };
    // Leave a challenge and its answer for another browser profile to try.
    const b3 = await begin();
    r.foreign = { challengeId: b3.challengeId, credential: asJSON(await navigator.credentials.get({ publicKey: toReq(b3.publicKey) })) };

    r.listed = await gp.list(mfaToken);
    await gp.remove(r.passkey1.id, mfaToken);
    r.afterRemove = await gp.list(mfaToken);
    return r;
  }, { ...args, r: part1 });
  // The same answer from another browser profile (no nonce cookie of the asking browser): refused.
  const other = await browser.newContext();
  const op = await other.newPage();
  await op.goto(args.passkeysURL);
  out.foreignResult = await op.evaluate(async (f) => {
    const res = await fetch('/.auth/login/custom/passkeys/login/finish', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(f) });
    return { status: res.status, body: await res.json() };
  }, out.foreign);
  await other.close();
  const creds = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  out.authenticatorCredentials = creds.credentials.length;
  out.signCounts = creds.credentials.map((c) => c.signCount);
  return out;
}
