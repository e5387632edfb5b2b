// The client's ordering of messages that name several history streams, and of holes, with
// arrivals in orders a real gateway produces only under races (concurrent pushes, a resume
// racing live pushes): a scripted socket stands in for the server here, since the order is
// what is under test. The end-to-end behaviour against wspush-local is in client.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../dist/index.js';

/** A socket that opens at once, acknowledges every subscribe, and delivers what `push` is given. */
class ScriptedSocket {
  static last;
  readyState = 0;
  onopen = null;
  onclose = null;
  onerror = null;
  onmessage = null;
  sent = [];
  constructor(url) {
    this.url = url;
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
      const reply = { ok: true, action: message.action, topics: message.topics, id: message.id };
      setTimeout(() => this.onmessage?.({ data: JSON.stringify(reply) }), 0);
    }
  }
  push(positions, data) {
    const envelope = { data, positions: Object.fromEntries(
      Object.entries(positions).map(([stream, seq]) => [stream, { seq, epoch: 'e1' }])) };
    this.onmessage?.({ data: JSON.stringify(envelope) });
  }
  close() {
    this.readyState = 3;
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
