// The client's ordering of messages that name several history streams, and of holes, with
// arrivals in orders a real gateway produces only under races (concurrent pushes, a resume
// racing live pushes), and its sockets when a resubscribe gets no reply or is refused: a
// scripted socket stands in for the server here, since those orders and failures are what
// is under test. The end-to-end behaviour against wspush-local is in client.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../dist/index.js';

/** A socket that opens at once, acknowledges every subscribe, and delivers what `push` is given. */
class ScriptedSocket {
  static last;
  static all = [];
  /** The reply to a route message on the n-th socket (0-based); `null` for none. */
  static reply = (_n, message) => ({ ok: true, action: message.action, topics: message.topics, id: message.id });
  readyState = 0;
  onopen = null;
  onclose = null;
  onerror = null;
  onmessage = null;
  sent = [];
  constructor(url) {
    this.url = url;
    this.n = ScriptedSocket.all.length;
    ScriptedSocket.all.push(this);
    ScriptedSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }
  send(text) {
    const message = JSON.parse(text);
    this.sent.push(message);
    if (message.action === 'subscribe' || message.action === 'unsubscribe') {
      const reply = ScriptedSocket.reply(this.n, message);
      if (reply) setTimeout(() => this.onmessage?.({ data: JSON.stringify(reply) }), 0);
    }
  }
  push(positions, data) {
    const envelope = { data, positions: Object.fromEntries(
      Object.entries(positions).map(([stream, seq]) => [stream, { seq, epoch: 'e1' }])) };
    this.onmessage?.({ data: JSON.stringify(envelope) });
  }
  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
}

async function subscribed(t, topics, options = {}) {
  const client = connect('ws://scripted.invalid/local', { WebSocket: ScriptedSocket, holeTimeoutMs: 200, ...options });
  const got = [];
  const gaps = [];
  t.after(() => client.close());
  client.on('gap', (stream) => gaps.push(stream));
  for (const topic of topics) await client.subscribe(topic, (data) => got.push(`${topic}:${data}`));
  return { client, got, gaps, socket: ScriptedSocket.last };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('a message of two streams waits for the earlier message of either, and is handed on once', async (t) => {
  const { client, got, gaps, socket } = await subscribed(t, ['room:2']);
  await client.subscribe('room:1', (data) => got.push(`room:1:${data}`));
  socket.push({ 'room:2': 4 }, 'a');
  socket.push({ 'room:1': 9 }, 'b');
  // R2 names both streams and overtakes R1, which names room:2 only.
  socket.push({ 'room:1': 10, 'room:2': 6 }, 'R2');
  socket.push({ 'room:2': 5 }, 'R1');
  socket.push({ 'room:1': 10, 'room:2': 6 }, 'R2'); // a repeat

  // R2 goes to both topics' handlers, once each, after R1.
  assert.deepEqual(got, ['room:2:a', 'room:1:b', 'room:2:R1', 'room:1:R2', 'room:2:R2']);
  assert.deepEqual(gaps, []);
});

test('a repeat seen through one stream still moves the other stream on', async (t) => {
  const { client, got, gaps, socket } = await subscribed(t, ['room:1', 'room:2']);
  socket.push({ 'room:1': 9 }, 'a');
  socket.push({ 'room:2': 5 }, 'b');
  // A resume sent it with room:2's position only; the live copy names both.
  socket.push({ 'room:2': 6 }, 'R');
  socket.push({ 'room:1': 10, 'room:2': 6 }, 'R');
  socket.push({ 'room:1': 11 }, 'c');

  assert.deepEqual(got, ['room:1:a', 'room:2:b', 'room:2:R', 'room:1:c']);
  assert.deepEqual(gaps, []);
});

test('a hole that stays open is a gap; a second hole behind it gets its own time', async (t) => {
  const { client, got, gaps, socket } = await subscribed(t, ['room:1']);
  socket.push({ 'room:1': 6 }, 'a');
  socket.push({ 'room:1': 8 }, 'c');
  socket.push({ 'room:1': 10 }, 'e');
  await sleep(300);
  assert.deepEqual(gaps, ['room:1'], 'the hole at 7');
  assert.deepEqual(got, ['room:1:a', 'room:1:c']);
  await sleep(300);
  assert.deepEqual(gaps, ['room:1', 'room:1'], 'the hole at 9');
  assert.deepEqual(got, ['room:1:a', 'room:1:c', 'room:1:e']);
  socket.push({ 'room:1': 8 }, 'c'); // a late repeat after the gaps
  socket.push({ 'room:1': 11 }, 'f');
  assert.deepEqual(got, ['room:1:a', 'room:1:c', 'room:1:e', 'room:1:f']);
});

test('a hole filled in time is no gap', async (t) => {
  const { client, got, gaps, socket } = await subscribed(t, ['room:1']);
  socket.push({ 'room:1': 1 }, 'a');
  socket.push({ 'room:1': 3 }, 'c');
  await sleep(50);
  socket.push({ 'room:1': 2 }, 'b');
  await sleep(300);
  assert.deepEqual(got, ['room:1:a', 'room:1:b', 'room:1:c']);
  assert.deepEqual(gaps, []);
});

const acknowledge = (_n, message) => ({ ok: true, action: message.action, topics: message.topics, id: message.id });

test('a replacement socket whose resubscribe gets no reply is dropped; the current one carries on', async (t) => {
  ScriptedSocket.all = [];
  // The second socket (the first replacement) never answers; the third does.
  ScriptedSocket.reply = (n, message) => (n === 1 ? null : acknowledge(n, message));
  t.after(() => { ScriptedSocket.reply = acknowledge; });
  const errors = [];
  const states = [];
  const client = connect('ws://scripted.invalid/local', {
    WebSocket: ScriptedSocket, maxConnectionMs: 300, pongTimeoutMs: 400, requestTimeoutMs: 200, initialDelayMs: 50, maxDelayMs: 100,
  });
  t.after(() => client.close());
  client.on('error', (error) => errors.push(error.message));
  client.on('state', (state) => states.push(state));
  await client.subscribe('room:1', () => {});

  const started = Date.now();
  while (ScriptedSocket.all.length < 3 && Date.now() - started < 5_000) await sleep(20);
  await sleep(100);

  const [first, second, third] = ScriptedSocket.all;
  assert.ok(third, `a later replacement was tried: ${ScriptedSocket.all.length} sockets`);
  assert.equal(second.readyState, 3, 'the unanswered replacement was closed');
  assert.equal(first.readyState, 3, 'the first socket closed once the third took over');
  assert.equal(third.readyState, 1);
  assert.ok(third.sent.some((m) => m.action === 'subscribe' && m.topics.includes('room:1')));
  assert.ok(errors.some((e) => e.startsWith('resubscribing failed')), errors.join('; '));
  assert.ok(!states.includes('reconnecting'), states.join(', '));
  const open = ScriptedSocket.all.filter((socket) => socket.readyState === 1);
  assert.equal(open.length, 1, 'no socket left behind');
});

test('after a reconnect, a topic the server now refuses is reported and the others are resubscribed', async (t) => {
  ScriptedSocket.all = [];
  ScriptedSocket.reply = (n, message) => (n === 1 && message.topics.includes('room:gone')
    ? { ok: false, action: 'subscribe', error: 'topic room:gone is not granted', id: message.id }
    : acknowledge(n, message));
  t.after(() => { ScriptedSocket.reply = acknowledge; });
  const errors = [];
  const client = connect('ws://scripted.invalid/local', {
    WebSocket: ScriptedSocket, topicsPerMessage: 1, initialDelayMs: 10, requestTimeoutMs: 500,
  });
  t.after(() => client.close());
  client.on('error', (error) => errors.push(error.message));
  await client.subscribe('room:gone', () => {});
  await client.subscribe('room:kept', () => {});

  ScriptedSocket.all[0].close(1006, 'dropped');
  const started = Date.now();
  while (client.state !== 'open' || ScriptedSocket.all.length < 2) {
    if (Date.now() - started > 5_000) break;
    await sleep(20);
  }
  await sleep(100);

  const second = ScriptedSocket.all[1];
  assert.equal(client.state, 'open');
  assert.deepEqual(second.sent.filter((m) => m.action === 'subscribe').map((m) => m.topics), [['room:gone'], ['room:kept']]);
  assert.ok(errors.some((e) => /room:gone was refused/.test(e)), errors.join('; '));
  assert.equal(ScriptedSocket.all.length, 2, 'a refusal is not retried in a loop');
});
