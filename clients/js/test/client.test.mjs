// @wspush/client against the real wspush-local binary, in Node with `ws` as the WebSocket.
// Run with `npm test` after `npm run build` and `cargo build -p wspush-local` (.ci/test does
// all three). WSPUSH_LOCAL_BIN names another binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { connect } from '../dist/index.js';

const binary = process.env.WSPUSH_LOCAL_BIN
  ?? fileURLToPath(new URL('../../../target/debug/wspush-local', import.meta.url));

/** Starts wspush-local on a free port with `args`; resolves to its URLs. */
async function gateway(t, args = []) {
  const child = spawn(binary, ['--port', '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGINT'));
  const base = await new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`wspush-local did not start within 30 s: ${output}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const found = output.match(/demo page:\s+(http:\/\/\S+?)\/?\s/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on('error', (error) => reject(new Error(`cannot start ${binary}: ${error.message}`)));
    child.on('exit', (code) => reject(new Error(`wspush-local exited with ${code}: ${output}`)));
  });
  return {
    base,
    ws: `${base.replace('http://', 'ws://')}/local`,
    async notify(request) {
      const response = await fetch(`${base}/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
      });
      const body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body));
      return body;
    },
    async connections() {
      const response = await fetch(`${base}/_local/connections`);
      return (await response.json()).connections;
    },
    /** Drops every open socket as API Gateway would (DELETE @connections/{id}). */
    async dropAll() {
      for (const id of await this.connections()) {
        await fetch(`${base}/local/@connections/${id}`, { method: 'DELETE' });
      }
    },
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(probe, what, ms = 20_000) {
  const started = Date.now();
  while (!probe()) {
    if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A client of `user`, closed when the test ends, with what it saw. */
function client(t, url, options = {}) {
  const seen = { states: [], gaps: [], errors: [] };
  const c = connect(url, { WebSocket, params: options.user ? { user: options.user } : undefined, ...options });
  c.on('state', (state, detail) => seen.states.push(detail?.reason ? `${state}: ${detail.reason}` : state));
  c.on('gap', (stream) => seen.gaps.push(stream));
  c.on('error', (error) => seen.errors.push(error.message));
  t.after(() => c.close());
  return { c, seen };
}

function jwt(secret, claims) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

test('subscribe is acknowledged, and a denied topic rejects with the server\'s reason', async (t) => {
  const g = await gateway(t, ['--allowed-namespaces', 'room']);
  const { c } = client(t, g.ws, { user: 'ana' });
  const got = [];

  await c.subscribe('room:1', (data) => got.push(data));
  await assert.rejects(c.subscribe('secret:1', () => {}), (error) => {
    assert.equal(error.name, 'ServerError');
    assert.match(error.message, /secret:1/);
    return true;
  });
  await g.notify({ topics: ['room:1'], data: { hello: 1 } });
  await until(() => got.length === 1, 'the push');

  assert.deepEqual(got, [{ hello: 1 }]);
  assert.equal(c.state, 'open');
});

test('1,000 messages while the gateway drops the socket 10 times: each once, in order', async (t) => {
  const g = await gateway(t, ['--history-namespaces', 'room', '--history-size', '1000']);
  const { c, seen } = client(t, g.ws, { user: 'ana', initialDelayMs: 50, maxDelayMs: 400 });
  const got = [];
  await c.subscribe('room:drops', (data) => got.push(data.n));

  for (let n = 1; n <= 1000; n += 1) {
    await g.notify({ topics: ['room:drops'], data: { n } });
    if (n % 100 === 50) await g.dropAll();
  }
  await until(() => got.length >= 1000, `1,000 messages (got ${got.length})`, 30_000);
  await sleep(200);

  assert.deepEqual(got, Array.from({ length: 1000 }, (_, i) => i + 1));
  assert.deepEqual(seen.gaps, []);
  assert.equal(seen.states.filter((state) => state === 'reconnecting').length, 10, seen.states.join(', '));
});

test('before the connection cap, a new socket takes over: nothing lost, nothing doubled', async (t) => {
  const g = await gateway(t, ['--history-namespaces', 'room', '--max-duration-secs', '3']);
  const { c, seen } = client(t, g.ws, { user: 'ana', maxConnectionMs: 2_000 });
  const got = [];
  await c.subscribe('room:cap', (data) => got.push(data.n));
  const first = await g.connections();

  let n = 0;
  const until7s = Date.now() + 7_000;
  while (Date.now() < until7s) {
    n += 1;
    await g.notify({ topics: ['room:cap'], data: { n } });
    await sleep(15);
  }
  await until(() => got.length >= n, `${n} messages (got ${got.length})`);
  await sleep(200);

  assert.deepEqual(got, Array.from({ length: n }, (_, i) => i + 1));
  assert.ok(!seen.states.includes('reconnecting'), seen.states.join(', '));
  const last = await g.connections();
  assert.equal(last.length, 1);
  assert.notDeepEqual(last, first, 'the socket was replaced');
});

test('the heartbeat keeps an idle socket open; without it the idle timeout closes it', async (t) => {
  const g = await gateway(t, ['--idle-timeout-secs', '2']);
  const beating = client(t, g.ws, { user: 'ana', heartbeatMs: 500 });
  const silent = client(t, g.ws, { user: 'bob', heartbeatMs: 60_000, initialDelayMs: 100 });
  await beating.c.subscribe('room:1', () => {});
  await silent.c.subscribe('room:2', () => {});

  await sleep(5_000);

  assert.deepEqual(beating.seen.states, ['open'], 'the beating client never reconnected');
  assert.ok(silent.seen.states.includes('reconnecting'), `the silent one idled out: ${silent.seen.states}`);
});

test('a token that expired by the reconnect, a refused one, or none from token() closes the client as unauthorized, without a retry loop', async (t) => {
  const secret = 'client-test-secret-client-test-secret!!';
  const g = await gateway(t, ['--jwt-hs256-secret', secret, '--jwt-issuer', 'test', '--jwt-audience', 'wspush',
    '--jwt-leeway-secs', '0']);
  const exp = Math.floor(Date.now() / 1000) + 3;
  let calls = 0;
  const expiring = client(t, g.ws, {
    initialDelayMs: 50,
    token: () => {
      calls += 1;
      return jwt(secret, { sub: 'ana', iss: 'test', aud: 'wspush', exp, topics: ['room:*'] });
    },
  });
  await expiring.c.subscribe('room:1', () => {});
  // A token the server refuses (another key): the 401 of the handshake.
  let wrongCalls = 0;
  const refused = client(t, g.ws, {
    initialDelayMs: 50,
    token: () => {
      wrongCalls += 1;
      return jwt('another-secret-another-secret-another!!', { sub: 'bob', iss: 'test', aud: 'wspush', exp: exp + 60 });
    },
  });

  // A session that ends: the first call has a token, the next finds none.
  let endingCalls = 0;
  const ending = client(t, g.ws, {
    initialDelayMs: 50,
    token: () => {
      endingCalls += 1;
      return endingCalls === 1 ? jwt(secret, { sub: 'cy', iss: 'test', aud: 'wspush', exp: exp + 60 }) : null;
    },
  });
  await ending.c.subscribe('user:cy', () => {});

  await sleep(3_500);
  await g.dropAll();
  await until(() => expiring.c.state === 'closed', 'the expiring client to close');
  await until(() => refused.c.state === 'closed', 'the refused client to close');
  await until(() => ending.c.state === 'closed', 'the ending client to close');
  await sleep(500);

  assert.equal(expiring.seen.states.at(-1), 'closed: unauthorized');
  assert.equal(calls, 2, 'one token for the first socket, one for the reconnect, no more');
  assert.equal(refused.seen.states.at(-1), 'closed: unauthorized');
  assert.equal(wrongCalls, 1);
  assert.equal(ending.seen.states.at(-1), 'closed: unauthorized');
  assert.equal(endingCalls, 2);
});

test('a stream trimmed while the client was away is reported as a gap', async (t) => {
  const g = await gateway(t, ['--history-namespaces', 'room', '--history-size', '5']);
  let open = () => {};
  let gate = Promise.resolve();
  const { c, seen } = client(t, g.ws, { user: 'ana', initialDelayMs: 10, token: () => gate.then(() => 'unused') });
  const got = [];
  await c.subscribe('room:trim', (data) => got.push(data.n));
  await g.notify({ topics: ['room:trim'], data: { n: 1 } });
  await until(() => got.length === 1, 'the first message');

  gate = new Promise((resolve) => { open = resolve; });
  await g.dropAll();
  for (let n = 2; n <= 11; n += 1) await g.notify({ topics: ['room:trim'], data: { n } });
  open();
  await until(() => seen.gaps.length === 1, 'the gap');
  await g.notify({ topics: ['room:trim'], data: { n: 12 } });
  await until(() => got.includes(12), 'the next live message');

  assert.deepEqual(seen.gaps, ['room:trim']);
  assert.deepEqual(got, [1, 12], 'nothing of the lost stretch is handed on as if it were whole');
});

test('presence: joins and leaves reach the other members as events, not as topic messages, and presence() lists who is there', async (t) => {
  const g = await gateway(t, ['--presence-namespaces', 'room']);
  const { c: bo } = client(t, g.ws, { user: 'bo' });
  const events = [];
  const messages = [];
  bo.on('presence', (event) => events.push(event));
  await bo.subscribe('room:1', (data) => messages.push(data));
  const { c: ana } = client(t, g.ws, { user: 'ana' });

  await ana.subscribe('room:1', () => {});
  await until(() => events.length === 1, 'the join');
  assert.deepEqual(await bo.presence('room:1'), { users: ['ana', 'bo'], total: 2 });
  assert.deepEqual(await bo.presence('room:1', { limit: 1 }), { users: ['ana'], total: 2 });
  await assert.rejects(bo.presence('chat:1'), /keeps no presence/);
  await ana.unsubscribe('room:1');
  await until(() => events.length === 2, 'the leave');

  assert.deepEqual(events, [
    { topic: 'room:1', user: 'ana', event: 'join' },
    { topic: 'room:1', user: 'ana', event: 'leave' },
  ]);
  assert.deepEqual(messages, [], 'events are not handed to the topic handler');
});
