// The demo page and @wspush/client in headless Chromium, against the local gateway binary:
// the page's two clients see targeting and exclusion; the library, loaded from the gateway's
// /client.js into the page, runs the six scenarios its Node tests run (clients/js/test):
// acknowledged and refused; 1,000 messages across 10 dropped sockets, in order; make before
// break at the connection cap; the heartbeat against the idle timeout; an expired token and
// a token callback without a session closing it as unauthorized; a gap. Run with `node --test integration-tests/browser/` after
// `cargo build -p wspush-local` (.ci/test does both).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const binary = process.env.WSPUSH_LOCAL_BIN
  ?? fileURLToPath(new URL('../../target/debug/wspush-local', import.meta.url));
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

async function startGateway(t, args = []) {
  const child = spawn(binary, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGINT'));
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`wspush-local did not start within 30 s: ${output}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const found = output.match(/demo page:\s+(http:\/\/\S+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on('error', (error) => reject(new Error(`cannot start ${binary}: ${error.message}`)));
    child.on('exit', (code) => reject(new Error(`wspush-local exited with ${code}: ${output}`)));
  });
}

async function openPage(t, url) {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(url);
  return page;
}

async function notify(url, request) {
  const response = await fetch(new URL('/notifications', url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const report = await response.json();
  assert.equal(response.status, 200, JSON.stringify(report));
  return report;
}

test('the demo page\'s two clients show targeting and exclusion', async (t) => {
  const url = await startGateway(t);
  const page = await openPage(t, url);

  for (const [panel, user] of [['a', 'ana'], ['b', 'bob']]) {
    await page.fill(`#${panel}-user`, user);
    await page.click(`#${panel}-connect`);
    await page.locator(`#${panel}-status`, { hasText: `connected as ${user}` }).waitFor();
    await page.fill(`#${panel}-topic`, 'room:7');
    await page.click(`#${panel}-subscribe`);
    await page.locator(`#${panel}-messages li`, { hasText: 'subscribed to room:7' }).waitFor();
  }

  const report = await notify(url, { topics: ['room:7'], exclude_users: ['bob'], data: { text: 'hello from the test' } });
  assert.equal(report.delivered, 1);
  await page.locator('#a-messages li', { hasText: 'hello from the test' }).waitFor({ timeout: 5_000 });
  await page.fill('#request', JSON.stringify({ users: ['bob'], data: 'sent from the page' }));
  await page.click('#send');
  await page.locator('#b-messages li', { hasText: 'sent from the page' }).waitFor({ timeout: 5_000 });
  await page.locator('#report', { hasText: '200' }).waitFor();

  assert.equal(await page.locator('#b-messages li', { hasText: 'hello from the test' }).count(), 0, 'bob was excluded');
  assert.equal(await page.locator('#a-messages li', { hasText: 'sent from the page' }).count(), 0, 'only bob was named');
  const wraps = await page.$eval('#report', (element) => getComputedStyle(element).whiteSpace);
  assert.equal(wraps, 'pre-wrap', 'long reports wrap');
});

test('the library in Chromium: acknowledged, refused with the server\'s reason, 1,000 messages in order across 10 drops', async (t) => {
  const url = await startGateway(t, ['--history-namespaces', 'room', '--allowed-namespaces', 'room']);
  const page = await openPage(t, url);

  const result = await page.evaluate(async () => {
    const { connect } = await import('/client.js');
    const client = connect(`ws://${location.host}/local`, { params: { user: 'ana' }, initialDelayMs: 50, maxDelayMs: 300 });
    const got = [];
    const states = [];
    const gaps = [];
    client.on('state', (state) => states.push(state));
    client.on('gap', (stream) => gaps.push(stream));
    await client.subscribe('room:b', (data) => got.push(data.n));
    let refusal = '';
    try {
      await client.subscribe('secret:1', () => {});
    } catch (error) {
      refusal = `${error.name}: ${error.message}`;
    }
    const post = (body, method = 'POST', path = '/notifications') => fetch(path, {
      method, headers: { 'content-type': 'application/json' }, body,
    });
    for (let n = 1; n <= 1000; n += 1) {
      await post(JSON.stringify({ topics: ['room:b'], data: { n } }));
      if (n % 100 === 50) {
        const { connections } = await (await fetch('/_local/connections')).json();
        for (const id of connections) await fetch(`/local/@connections/${id}`, { method: 'DELETE' });
      }
    }
    const started = Date.now();
    while (got.length < 1000 && Date.now() - started < 30_000) await new Promise((r) => setTimeout(r, 20));
    client.close();
    return { got, states, gaps, refusal };
  });

  assert.match(result.refusal, /^ServerError: .*secret:1/);
  assert.deepEqual(result.got, Array.from({ length: 1000 }, (_, i) => i + 1));
  assert.deepEqual(result.gaps, []);
  assert.equal(result.states.filter((state) => state === 'reconnecting').length, 10, result.states.join(', '));
});

test('the library in Chromium reports a stream trimmed while it was away as a gap', async (t) => {
  const url = await startGateway(t, ['--history-namespaces', 'room', '--history-size', '5']);
  const page = await openPage(t, url);

  const result = await page.evaluate(async () => {
    const { connect } = await import('/client.js');
    let open = () => {};
    let gate = Promise.resolve();
    const client = connect(`ws://${location.host}/local`, {
      params: { user: 'ana' }, initialDelayMs: 10, token: () => gate.then(() => 'unused'),
    });
    const got = [];
    const gaps = [];
    client.on('gap', (stream) => gaps.push(stream));
    await client.subscribe('room:trim', (data) => got.push(data.n));
    const push = (n) => fetch('/notifications', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topics: ['room:trim'], data: { n } }),
    });
    const wait = async (probe) => {
      const started = Date.now();
      while (!probe() && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
    };
    await push(1);
    await wait(() => got.length === 1);
    gate = new Promise((resolve) => { open = resolve; });
    const { connections } = await (await fetch('/_local/connections')).json();
    for (const id of connections) await fetch(`/local/@connections/${id}`, { method: 'DELETE' });
    for (let n = 2; n <= 11; n += 1) await push(n);
    open();
    await wait(() => gaps.length === 1);
    await push(12);
    await wait(() => got.includes(12));
    client.close();
    return { got, gaps };
  });

  assert.deepEqual(result.gaps, ['room:trim']);
  assert.deepEqual(result.got, [1, 12]);
});

test('the library in Chromium replaces its socket before the connection cap: nothing lost, nothing doubled', async (t) => {
  const url = await startGateway(t, ['--history-namespaces', 'room', '--max-duration-secs', '3']);
  const page = await openPage(t, url);

  const result = await page.evaluate(async () => {
    const { connect } = await import('/client.js');
    const client = connect(`ws://${location.host}/local`, { params: { user: 'ana' }, maxConnectionMs: 2_000 });
    const got = [];
    const states = [];
    client.on('state', (state) => states.push(state));
    await client.subscribe('room:cap', (data) => got.push(data.n));
    const listed = async () => (await (await fetch('/_local/connections')).json()).connections;
    const first = await listed();
    let n = 0;
    const stop = Date.now() + 7_000;
    while (Date.now() < stop) {
      n += 1;
      await fetch('/notifications', {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ topics: ['room:cap'], data: { n } }),
      });
      await new Promise((r) => setTimeout(r, 15));
    }
    const started = Date.now();
    while (got.length < n && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    const last = await listed();
    client.close();
    return { got, n, states, first, last };
  });

  assert.deepEqual(result.got, Array.from({ length: result.n }, (_, i) => i + 1));
  assert.ok(!result.states.includes('reconnecting'), result.states.join(', '));
  assert.equal(result.last.length, 1);
  assert.notDeepEqual(result.last, result.first, 'the socket was replaced');
});

test('the library in Chromium keeps an idle socket open with its heartbeat', async (t) => {
  const url = await startGateway(t, ['--idle-timeout-secs', '2']);
  const page = await openPage(t, url);

  const result = await page.evaluate(async () => {
    const { connect } = await import('/client.js');
    const open = (user, heartbeatMs) => {
      const states = [];
      const client = connect(`ws://${location.host}/local`, { params: { user }, heartbeatMs, initialDelayMs: 100 });
      client.on('state', (state) => states.push(state));
      return { client, states };
    };
    const beating = open('ana', 500);
    const silent = open('bob', 60_000);
    await beating.client.subscribe('room:1', () => {});
    await silent.client.subscribe('room:2', () => {});
    await new Promise((r) => setTimeout(r, 5_000));
    const seen = { beating: [...beating.states], silent: [...silent.states] };
    beating.client.close();
    silent.client.close();
    return seen;
  });

  assert.deepEqual(result.beating, ['open'], 'the beating client never reconnected');
  assert.ok(result.silent.includes('reconnecting'), `the silent one idled out: ${result.silent}`);
});

test('the library in Chromium closes as unauthorized on an expired token, or when token() has none, without a retry loop', async (t) => {
  const secret = 'browser-test-secret-browser-test-secret!';
  const url = await startGateway(t, ['--jwt-hs256-secret', secret, '--jwt-issuer', 'test', '--jwt-audience', 'wspush',
    '--jwt-leeway-secs', '0']);
  const page = await openPage(t, url);
  const exp = Math.floor(Date.now() / 1000) + 3;
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  await page.exposeFunction('signToken', (sub) => {
    const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub, iss: 'test', aud: 'wspush', exp, topics: ['room:*'] })}`;
    return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
  });

  const result = await page.evaluate(async () => {
    const { connect } = await import('/client.js');
    const open = (token) => {
      const seen = { states: [], calls: 0 };
      const client = connect(`ws://${location.host}/local`, {
        initialDelayMs: 50,
        token: () => { seen.calls += 1; return token(seen.calls); },
      });
      client.on('state', (state, detail) => seen.states.push(detail?.reason ? `${state}: ${detail.reason}` : state));
      return { client, seen };
    };
    // One token for its life, expiring 3 s from now.
    const expiring = open(() => window.signToken('ana'));
    // A session that ends: the first call has a token, the next finds none.
    const ending = open((call) => (call === 1 ? window.signToken('bob') : null));
    await expiring.client.subscribe('room:1', () => {});
    await ending.client.subscribe('room:2', () => {});
    await new Promise((r) => setTimeout(r, 3_500));
    const { connections } = await (await fetch('/_local/connections')).json();
    for (const id of connections) await fetch(`/local/@connections/${id}`, { method: 'DELETE' });
    const started = Date.now();
    while ((expiring.client.state !== 'closed' || ending.client.state !== 'closed') && Date.now() - started < 10_000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 500));
    return { expiring: expiring.seen, ending: ending.seen };
  });

  assert.equal(result.expiring.states.at(-1), 'closed: unauthorized', result.expiring.states.join(', '));
  assert.equal(result.expiring.calls, 2, 'one token for the first socket, one for the reconnect, no more');
  assert.equal(result.ending.states.at(-1), 'closed: unauthorized', result.ending.states.join(', '));
  assert.equal(result.ending.calls, 2);
});
