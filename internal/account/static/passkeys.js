// Gatehouse passkeys page: register, sign in (passwordless or as a second factor), list and remove
// passkeys of a built-in account. Served from Gatehouse's own origin (the relying party) under a
// Content-Security-Policy that allows this script only. window.gatehousePasskeys exposes the same
// operations to apps and tests.
(() => {
  'use strict';
  const base = '/.auth/login/custom';
  const state = { token: '', mfaToken: '' };

  const b64u = {
    decode(s) {
      const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
      return Uint8Array.from(b, (c) => c.charCodeAt(0)).buffer;
    },
    encode(buf) {
      let s = '';
      for (const x of new Uint8Array(buf)) s += String.fromCharCode(x);
      return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    },
  };

  async function call(method, path, body, token) {
    const headers = { 'Content-Type': 'application/json', 'ZUMO-API-VERSION': '2.0.0' };
    if (token) headers['X-ZUMO-AUTH'] = token;
    const res = await fetch(base + path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    const data = text ? JSON.parse(text) : null;
    if (!res.ok) throw new Error((data && data.error) || ('HTTP ' + res.status));
    return data;
  }

  function creationOptions(pk) {
    const o = { ...pk, challenge: b64u.decode(pk.challenge), user: { ...pk.user, id: b64u.decode(pk.user.id) } };
    if (pk.excludeCredentials) o.excludeCredentials = pk.excludeCredentials.map((c) => ({ ...c, id: b64u.decode(c.id) }));
    return o;
  }

  function requestOptions(pk) {
    const o = { ...pk, challenge: b64u.decode(pk.challenge) };
    if (pk.allowCredentials) o.allowCredentials = pk.allowCredentials.map((c) => ({ ...c, id: b64u.decode(c.id) }));
    return o;
  }

  function credentialJSON(cred) {
    const r = cred.response;
    const out = { id: cred.id, rawId: b64u.encode(cred.rawId), type: cred.type, response: { clientDataJSON: b64u.encode(r.clientDataJSON) },
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {} };
    if (cred.authenticatorAttachment) out.authenticatorAttachment = cred.authenticatorAttachment;
    if (r.attestationObject) {
      out.response.attestationObject = b64u.encode(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = b64u.encode(r.authenticatorData);
      out.response.signature = b64u.encode(r.signature);
      if (r.userHandle) out.response.userHandle = b64u.encode(r.userHandle);
    }
    return out;
  }

  const api = {
    state,
    async passwordSignIn(email, password) {
      const s = await call('POST', '', { email, password });
      if (s.mfaRequired) { state.mfaToken = s.mfaToken; return s; }
      state.token = s.authenticationToken;
      return s;
    },
    async register(name, token = state.token) {
      const begin = await call('POST', '/passkeys/register', undefined, token);
      const cred = await navigator.credentials.create({ publicKey: creationOptions(begin.publicKey) });
      return call('POST', '/passkeys/register/finish', { challengeId: begin.challengeId, name, credential: credentialJSON(cred) }, token);
    },
    // signIn signs in passwordless, or with mfaToken completes a password sign-in with a passkey.
    async signIn(mfaToken = '') {
      const begin = await call('POST', '/passkeys/login', mfaToken ? { mfaToken } : {});
      const cred = await navigator.credentials.get({ publicKey: requestOptions(begin.publicKey) });
      const body = { challengeId: begin.challengeId, credential: credentialJSON(cred) };
      if (mfaToken) body.mfaToken = mfaToken;
      const s = await call('POST', '/passkeys/login/finish', body);
      state.token = s.authenticationToken;
      state.mfaToken = '';
      return s;
    },
    async list(token = state.token) { return (await call('GET', '/mfa', undefined, token)).passkeys; },
    async remove(id, token = state.token) { await call('DELETE', '/passkeys/' + encodeURIComponent(id), undefined, token); },
  };
  window.gatehousePasskeys = api;

  const $ = (id) => document.getElementById(id);
  const say = (msg) => { $('status').textContent = msg; };
  async function refresh() {
    $('account').hidden = !state.token;
    if (!state.token) return;
    const ul = $('passkey-list');
    ul.replaceChildren();
    for (const pk of await api.list()) {
      const li = document.createElement('li');
      li.textContent = pk.name + ' ';
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.textContent = 'Remove';
      btn.addEventListener('click', () => api.remove(pk.id).then(refresh).then(() => say('Passkey removed.'), (e) => say(e.message)));
      li.append(btn);
      ul.append(li);
    }
  }
  document.addEventListener('DOMContentLoaded', () => {
    $('password-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      try {
        const s = await api.passwordSignIn(f.get('email'), f.get('password'));
        if (s.mfaRequired && s.methods.includes('passkey')) await api.signIn(s.mfaToken);
        else if (s.mfaRequired) { say('This account needs a code from its authenticator app.'); return; }
        say('Signed in.');
        await refresh();
      } catch (e) { say(e.message); }
    });
    $('passkey-signin').addEventListener('click', async () => {
      try { await api.signIn(); say('Signed in with a passkey.'); await refresh(); } catch (e) { say(e.message); }
    });
    $('register-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try { await api.register(new FormData(ev.target).get('name')); say('Passkey added.'); await refresh(); } catch (e) { say(e.message); }
    });
  });
})();
