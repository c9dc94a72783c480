// AuthRealm as a third-party relying party sees it: openid-client (the
// OpenID-certified library) runs discovery, client_credentials, the
// authorization code flow with PKCE, ID token validation, refresh,
// UserInfo, introspection and revocation against real AuthRealm processes.
// The browser step is headless Chromium (playwright-core, Debian's
// /usr/bin/chromium) submitting OP's login form — a wrong password first,
// whose error must show in the page — or, with AUTHREALM_E2E_BROWSER=http,
// a plain HTTP form submit. Prints "e2e ok" and exits 0 when every check
// held; anything else is a failure with the reason on stderr.
import http from 'node:http';
import * as client from 'openid-client';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const issuer = new URL(env('AUTHREALM_E2E_ISSUER'));
const app = { id: env('AUTHREALM_E2E_CLIENT_ID'), secret: env('AUTHREALM_E2E_CLIENT_SECRET') };
const worker = { id: env('AUTHREALM_E2E_WORKER_ID'), secret: env('AUTHREALM_E2E_WORKER_SECRET') };
const redirectUri = env('AUTHREALM_E2E_REDIRECT_URI');
const email = env('AUTHREALM_E2E_EMAIL');
const password = env('AUTHREALM_E2E_PASSWORD');
const browserMode = process.env.AUTHREALM_E2E_BROWSER ?? 'chromium';

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

const insecure = { execute: [client.allowInsecureRequests] };
const appConfig = await client.discovery(issuer, app.id, app.secret, client.ClientSecretBasic(app.secret), insecure);
const workerConfig = await client.discovery(issuer, worker.id, worker.secret, client.ClientSecretPost(worker.secret), insecure);
const meta = appConfig.serverMetadata();
check(meta.issuer === issuer.href.replace(/\/$/, '') || meta.issuer === issuer.href, 'discovery: issuer is the URL it was fetched from');
check(typeof meta.authorization_endpoint === 'string', 'discovery: authorization_endpoint');
check(meta.code_challenge_methods_supported?.includes('S256'), 'discovery: S256');

// client_credentials, then introspection by a client allowed to introspect.
const cc = await client.clientCredentialsGrant(workerConfig, { scope: 'notes.read' });
check(typeof cc.access_token === 'string' && cc.token_type.toLowerCase() === 'bearer', 'client_credentials: access token');
const ccInfo = await client.tokenIntrospection(workerConfig, cc.access_token);
check(ccInfo.active === true && ccInfo.sub === worker.id, 'introspection: the client_credentials token is active, sub = client');

// Authorization code + PKCE.
const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authUrl = client.buildAuthorizationUrl(appConfig, {
  redirect_uri: redirectUri,
  scope: 'openid email profile',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});

async function viaChromium() {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.AUTHREALM_E2E_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const cleanups = [];
  try {
    const page = await browser.newPage();
    const problems = [];
    // Chromium reports a document answered with an error status as a
    // console error too; the one 401 the wrong password deliberately gets
    // is that, not a fault of the page, and is the only message let through.
    let expect401 = false;
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (expect401 && /status of 401/.test(m.text())) return;
      problems.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    // The client's redirect URI: a small local server that records where
    // the browser was sent (Chromium follows OP's 302 there itself).
    let captured;
    const target = new URL(redirectUri);
    const server = http.createServer((req, res) => {
      const url = new URL(req.url, redirectUri);
      if (url.pathname === target.pathname) captured = url.href;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('captured');
    });
    await new Promise((resolve) => server.listen(Number(target.port), target.hostname, resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const first = await page.goto(authUrl.href);
    check(first.status() === 200, 'login page: 200');
    check(await page.getByLabel('Email').isVisible(), 'login page: the email field has its label');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('definitely not the password');
    expect401 = true;
    const [wrong] = await Promise.all([
      page.waitForNavigation(),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    check(wrong.status() === 401, 'wrong password: 401');
    const alert = page.getByRole('alert');
    check((await alert.textContent()).includes('Wrong email or password'), 'wrong password: the error is announced in the page');
    check((await page.getByLabel('Email').inputValue()) === email, 'wrong password: the email is kept');
    expect401 = false;
    await page.getByLabel('Password').fill(password);
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(redirectUri)),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    check(typeof captured === 'string', 'login: the browser was sent to the redirect URI');
    check(problems.length === 0, `no console errors (${problems.join('; ')})`);
    const callback = new URL(captured);

    // Lockout, as a user sees it: another account, wrong passwords until
    // OP's failure limit answers 429 in the page.
    const lockPage = await browser.newPage();
    const lockProblems = [];
    lockPage.on('console', (m) => {
      if (m.type() === 'error' && !/status of (401|429)/.test(m.text())) lockProblems.push(m.text());
    });
    await lockPage.goto(authUrl.href);
    let last;
    for (let i = 0; i < 12; i += 1) {
      await lockPage.getByLabel('Email').fill(`locked-${email}`);
      await lockPage.getByLabel('Password').fill(`wrong password number ${i}`);
      [last] = await Promise.all([
        lockPage.waitForNavigation(),
        lockPage.getByRole('button', { name: 'Sign in' }).click(),
      ]);
      if (last.status() !== 401) break;
    }
    check(last.status() === 429, 'lockout: 429 once the failure limit is reached');
    check((await lockPage.getByRole('alert').textContent()).includes('Too many failed sign-in attempts'), 'lockout: the page says so');
    check(lockProblems.length === 0, `lockout: no console errors (${lockProblems.join('; ')})`);
    return callback;
  } finally {
    await browser.close();
    for (const c of cleanups) await c();
  }
}

async function viaHttp() {
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const pageRes = await fetch(authUrl, { redirect: 'manual' });
  keep(pageRes);
  check(pageRes.status === 200, 'login page: 200');
  const html = await pageRes.text();
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    const value = m[2].replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
    form.set(m[1], value);
  }
  const action = new URL(html.match(/<form method="post" action="([^"]+)"/)[1], authUrl);
  const post = (pw) => {
    const body = new URLSearchParams(form);
    body.set('email', email);
    body.set('password', pw);
    return fetch(action, { method: 'POST', body, redirect: 'manual', headers: { cookie: cookie() } });
  };
  const wrong = await post('definitely not the password');
  check(wrong.status === 401 && (await wrong.text()).includes('Wrong email or password'), 'wrong password: 401 and the error in the page');
  const ok = await post(password);
  keep(ok);
  check(ok.status === 302, 'login: 302 to the client');
  return new URL(ok.headers.get('location'));
}

const callback = browserMode === 'http' ? await viaHttp() : await viaChromium();
const tokens = await client.authorizationCodeGrant(appConfig, callback, {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
check(claims && claims.sub && claims.aud === app.id, 'code exchange: ID token validated by openid-client');
check(claims.email === email, 'ID token: email claim');
check(typeof tokens.refresh_token === 'string', 'code exchange: refresh token');

const info = await client.fetchUserInfo(appConfig, tokens.access_token, claims.sub);
check(info.sub === claims.sub && info.email === email, 'userinfo: the user, by the scopes granted');

const refreshed = await client.refreshTokenGrant(appConfig, tokens.refresh_token);
check(typeof refreshed.access_token === 'string' && refreshed.refresh_token !== tokens.refresh_token, 'refresh: a new pair, rotated');
const active = await client.tokenIntrospection(workerConfig, refreshed.access_token);
check(active.active === true && active.sub === claims.sub, 'introspection: the refreshed access token is active');

await client.tokenRevocation(appConfig, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
const revoked = await client.tokenIntrospection(workerConfig, refreshed.access_token);
check(revoked.active === false, 'revocation: the session is over, its access token inactive');
let refusedAgain = false;
try {
  await client.refreshTokenGrant(appConfig, refreshed.refresh_token);
} catch (e) {
  refusedAgain = e?.error === 'invalid_grant' || /invalid_grant/.test(String(e?.message));
}
check(refusedAgain, 'revocation: the refresh token is refused');

console.log('e2e ok');
