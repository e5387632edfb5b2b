// @wspush/client: the other end of a wspush socket, for browsers and Node.
//
// It keeps one logical connection alive across the sockets API Gateway gives it: a heartbeat
// below the 10-minute idle timeout (the `ping` route, answered by API Gateway itself), a
// reconnect with capped exponential backoff and full jitter (a fresh token for each
// attempt), a new socket opened before the 2-hour cap and the old one closed only once the
// new one is subscribed (make before break), and after every new socket a resubscribe with
// each stream's last position, so that what was pushed meanwhile is handed over in order,
// duplicates dropped by (stream, seq), and a gap reported when the history no longer reaches
// back.

/** Where a message sits in a history stream. */
export interface Position {
  seq: number;
  epoch: string;
}

/** What a handler learns besides the data. */
export interface MessageMeta {
  /** The message's position in each of its history streams; empty without history. */
  positions: Record<string, Position>;
}

/** Called with each message of a subscribed topic. */
export type Handler = (data: unknown, meta: MessageMeta) => void;

/** The client's state. */
export type State = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why the client closed. */
export type CloseReason = 'closed by the application' | 'unauthorized';

/** A user joined or left a topic that keeps presence (see `client.presence`). */
export interface PresenceEvent {
  topic: string;
  user: string;
  event: 'join' | 'leave';
}

/** Who is in a topic: at most `limit` users, and how many there are in all. */
export interface Members {
  users: string[];
  total: number;
}

/** The events a client emits. */
export interface Events {
  /**
   * Another user's first connection subscribed to a topic that keeps presence (`join`), or
   * their last one is gone from it (`leave`), for a topic subscribed here. Events can arrive
   * out of order (they travel through a queue): `presence()` answers who is there now.
   */
  presence: (event: PresenceEvent) => void;
  state: (state: State, detail?: { reason?: CloseReason | string }) => void;
  /** A history stream could not be caught up: reload its state from your backend. */
  gap: (stream: string) => void;
  /**
   * A message no subscription handler took: one of a stream nobody subscribed to here (a
   * user's own channel), or one without positions when no subscribed topic is without
   * history (without positions the server does not say which topic a message is for).
   */
  message: (data: unknown) => void;
  error: (error: Error) => void;
}

/** The part of the WebSocket API the client uses (the browser's, Node's, or `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** How a client connects. */
export interface ConnectOptions {
  /**
   * Called before every socket: the token `$connect` verifies (`?token=` by default). Return
   * `null` when there is no session any more (your backend refused to issue a token): the
   * client then closes with reason `unauthorized` instead of retrying. A browser cannot see
   * the 401 of a refused handshake, so this, and an expired JWT, are how it learns of one.
   */
  token?: () => string | null | Promise<string | null>;
  /** The query parameter the token goes in (default `token`). */
  tokenParam?: string;
  /** More query parameters for `$connect` (`{ user: 'ana' }` for the local gateway's dev mode). */
  params?: Record<string, string>;
  /** The WebSocket implementation (default: the global one; in Node 20, pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /** Ping when nothing was sent for this long (default 60 s; API Gateway closes at 10 min idle). */
  heartbeatMs?: number;
  /** Without any message this long after a ping, the socket is taken as dead (default 10 s). */
  pongTimeoutMs?: number;
  /** The first reconnect's delay ceiling (default 500 ms). */
  initialDelayMs?: number;
  /** The largest reconnect delay ceiling (default 30 s). */
  maxDelayMs?: number;
  /** Open the next socket this long after the current one opened (default 1 h 55 min: API Gateway closes at 2 h). */
  maxConnectionMs?: number;
  /** How long a subscribe or unsubscribe waits for its reply (default 10 s). */
  requestTimeoutMs?: number;
  /** How long a hole in a stream's numbers may stay open before it is reported as a gap (default 5 s). */
  holeTimeoutMs?: number;
  /**
   * At most this many topics per subscribe message when resubscribing (default 20): keep
   * it at or below the server's `WSPUSH_MAX_TOPICS_PER_MESSAGE`.
   */
  topicsPerMessage?: number;
}

/** A reply of the subscribe route. */
interface Reply {
  ok: boolean;
  action?: string;
  id?: string;
  error?: string;
  topics?: string[];
  recovered?: Record<string, number>;
  gaps?: string[];
  users?: string[];
  total?: number;
}

interface Envelope {
  data: unknown;
  positions: Record<string, Position>;
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A message with positions, held until every stream it is ordered by has reached it. */
interface Held {
  envelope: Envelope;
  /** Handed on already (this copy repeats one that was, through another stream). */
  delivered: boolean;
}

/** A stream's delivery state: the last position handed on, and messages that came early. */
interface StreamState {
  last?: Position;
  /**
   * After a gap with nothing to carry on from: positions up to this one were handed on, so
   * a repeat of them is still dropped while the next message becomes the new baseline.
   */
  floor?: Position;
  early: Map<number, Held>;
  holeTimer?: ReturnType<typeof setTimeout>;
  /** Whether messages of this stream ever carried positions (it keeps history). */
  history: boolean;
}

/** Where a position stands in a stream: handed on, next in line, or after a hole. */
type Standing = 'seen' | 'next' | 'early';

const OPEN = 1;

/** A refusal of the server, with its words. */
export class ServerError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'ServerError';
  }
}

/** One socket of the client, and the requests waiting for its replies. */
class Link {
  readonly pending = new Map<string, Pending>();
  opened = 0;
  lastSent = 0;
  lastReceived = 0;
  pingSentAt = 0;
  constructor(readonly socket: WebSocketLike) {}
}

function decodeJwtExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return undefined;
  try {
    const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}

function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  return keys.length === 2 && 'data' in record && typeof record.positions === 'object'
    && record.positions !== null;
}

function isPresenceEvent(value: unknown): value is { presence: PresenceEvent } {
  if (typeof value !== 'object' || value === null) return false;
  const keys = Object.keys(value);
  const event = (value as { presence?: unknown }).presence as Partial<PresenceEvent> | undefined;
  return keys.length === 1 && keys[0] === 'presence' && typeof event === 'object' && event !== null
    && typeof event.topic === 'string' && typeof event.user === 'string'
    && (event.event === 'join' || event.event === 'leave');
}

function isReply(value: unknown): value is Reply {
  return typeof value === 'object' && value !== null && typeof (value as Reply).ok === 'boolean'
    && ('action' in (value as object));
}

/** A client: one logical connection over the sockets it opens. */
export class WspushClient {
  #options: Required<Omit<ConnectOptions, 'token' | 'params' | 'WebSocket'>>
    & Pick<ConnectOptions, 'token' | 'params'> & { WebSocket: WebSocketConstructor };
  #url: string;
  #state: State = 'connecting';
  #link: Link | undefined;
  /** The socket being opened to replace `#link` (make before break). */
  #next: Link | undefined;
  #handlers = new Map<string, Set<Handler>>();
  #streams = new Map<string, StreamState>();
  #listeners: { [K in keyof Events]: Set<Events[K]> } = {
    presence: new Set(), state: new Set(), gap: new Set(), message: new Set(), error: new Set(),
  };
  #attempt = 0;
  #ids = 0;
  /** A replacement socket is being opened (from its token to its resubscribe). */
  #replacing = false;
  /** After a failed replacement, the next is not tried before this time. */
  #replaceNotBefore = 0;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #ticker: ReturnType<typeof setInterval> | undefined;
  #lastToken: string | undefined;

  constructor(url: string, options: ConnectOptions = {}) {
    const WebSocketImpl = options.WebSocket
      ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WebSocketImpl) {
      throw new Error('no WebSocket implementation: pass options.WebSocket (in Node 20, `ws`)');
    }
    this.#url = url;
    this.#options = {
      token: options.token,
      params: options.params,
      WebSocket: WebSocketImpl,
      tokenParam: options.tokenParam ?? 'token',
      heartbeatMs: options.heartbeatMs ?? 60_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10_000,
      initialDelayMs: options.initialDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 30_000,
      maxConnectionMs: options.maxConnectionMs ?? (2 * 60 - 5) * 60_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      holeTimeoutMs: options.holeTimeoutMs ?? 5_000,
      topicsPerMessage: options.topicsPerMessage ?? 20,
    };
    const tick = Math.max(50, Math.min(this.#options.heartbeatMs, this.#options.pongTimeoutMs) / 4);
    this.#ticker = setInterval(() => this.#tick(), tick);
    void this.#open('connecting');
  }

  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** The current state. */
  get state(): State {
    return this.#state;
  }

  /** Listens to `event`; returns a function that stops listening. */
  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }

  /**
   * Subscribes to `topic`, handing its messages to `handler`. Resolves once the server
   * replied ok; rejects with the server's error (denied, too many topics, not granted).
   * Kept across reconnects, resumed from the last position.
   */
  async subscribe(topic: string, handler: Handler): Promise<void> {
    if (this.#isClosed()) throw new Error('the client is closed');
    const first = !this.#handlers.has(topic);
    let handlers = this.#handlers.get(topic);
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(topic, handlers);
    }
    handlers.add(handler);
    if (!first) return;
    try {
      const link = await this.#whenOpen();
      await this.#request(link, { action: 'subscribe', topics: [topic], ...this.#since([topic]) });
    } catch (error) {
      this.#handlers.delete(topic);
      throw error;
    }
  }

  /**
   * Who is in `topic` (a topic that keeps presence, subscribed here): distinct users with a
   * live connection subscribed, at most `limit` (default 100, at most 1,000) of them.
   */
  async presence(topic: string, options: { limit?: number } = {}): Promise<Members> {
    if (this.#isClosed()) throw new Error('the client is closed');
    const link = await this.#whenOpen();
    const reply = await this.#request(link, {
      action: 'presence',
      topic,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    });
    return { users: reply.users ?? [], total: reply.total ?? 0 };
  }

  /** Unsubscribes from `topic` (every handler of it). */
  async unsubscribe(topic: string): Promise<void> {
    if (!this.#handlers.delete(topic)) return;
    this.#streams.delete(topic);
    if (this.#isClosed()) return;
    const link = await this.#whenOpen();
    await this.#request(link, { action: 'unsubscribe', topics: [topic] });
  }

  /**
   * Drops the current socket and opens a new one, resuming every stream from its last
   * position: for a network change (the browser's `online` event), or to see a resume.
   */
  reconnect(): void {
    if (this.#isClosed()) return;
    this.#link?.socket.close(4001, 'reconnect');
  }

  /** Closes the client: no reconnect. */
  close(): void {
    this.#shut('closed by the application');
  }

  #emit<K extends keyof Events>(event: K, ...args: Parameters<Events[K]>): void {
    for (const listener of this.#listeners[event]) {
      try {
        (listener as (...a: Parameters<Events[K]>) => void)(...args);
      } catch (error) {
        if (event !== 'error') this.#emit('error', error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  #setState(state: State, reason?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#emit('state', state, reason === undefined ? undefined : { reason });
  }

  #later(ms: number, run: () => void): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
    return timer;
  }

  #shut(reason: CloseReason): void {
    if (this.#isClosed()) return;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#ticker) clearInterval(this.#ticker);
    for (const stream of this.#streams.values()) {
      if (stream.holeTimer) clearTimeout(stream.holeTimer);
    }
    for (const link of [this.#link, this.#next]) {
      if (!link) continue;
      this.#failPending(link, new Error(`the client closed: ${reason}`));
      link.socket.onclose = null;
      link.socket.close(1000, reason);
    }
    this.#link = undefined;
    this.#next = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(new Error(`the client closed: ${reason}`));
    this.#setState('closed', reason);
  }

  #failPending(link: Link, error: Error): void {
    for (const pending of link.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    link.pending.clear();
  }

  /** The URL of the next socket, with a fresh token; `null` when `token()` said there is none. */
  async #socketUrl(): Promise<string | null> {
    const url = new URL(this.#url);
    for (const [key, value] of Object.entries(this.#options.params ?? {})) {
      url.searchParams.set(key, value);
    }
    if (this.#options.token) {
      const token = await this.#options.token();
      if (token === null) return null;
      this.#lastToken = token;
      url.searchParams.set(this.#options.tokenParam, token);
    }
    return url.toString();
  }

  /** Opens a socket: the first, a reconnect, or the next one before the cap (`replacing`). */
  async #open(state: State, replacing = false): Promise<void> {
    if (this.#isClosed()) return;
    if (replacing) this.#replacing = true;
    else this.#setState(state);
    let url: string | null;
    try {
      url = await this.#socketUrl();
    } catch (error) {
      this.#emit('error', new Error(`the token callback failed: ${String(error)}`));
      if (replacing) this.#replacementFailed();
      else this.#retry();
      return;
    }
    if (this.#isClosed()) return;
    if (url === null) {
      this.#shut('unauthorized');
      return;
    }
    const exp = this.#lastToken === undefined ? undefined : decodeJwtExpiry(this.#lastToken);
    if (exp !== undefined && exp * 1000 <= Date.now()) {
      // A browser cannot see the 401 of a refused handshake: an expired token is known here.
      this.#shut('unauthorized');
      return;
    }
    let socket: WebSocketLike;
    try {
      socket = new this.#options.WebSocket(url);
    } catch (error) {
      this.#emit('error', error instanceof Error ? error : new Error(String(error)));
      if (replacing) this.#replacementFailed();
      else this.#retry();
      return;
    }
    const link = new Link(socket);
    if (replacing) this.#next = link;
    else this.#link = link;
    let opened = false;
    let unauthorized = false;
    socket.onopen = () => {
      opened = true;
      link.opened = Date.now();
      link.lastReceived = link.opened;
      link.lastSent = link.opened;
      void this.#onOpen(link, replacing);
    };
    socket.onerror = (event: unknown) => {
      // `ws` names the handshake's status; browsers give nothing.
      const message = String((event as { message?: string })?.message ?? '');
      if (/\b401\b/.test(message)) unauthorized = true;
    };
    socket.onmessage = (event) => {
      link.lastReceived = Date.now();
      this.#onMessage(link, typeof event.data === 'string' ? event.data : String(event.data));
    };
    socket.onclose = () => {
      this.#failPending(link, new Error('the socket closed before the reply'));
      if (this.#isClosed()) return;
      if (unauthorized && !opened) {
        this.#shut('unauthorized');
        return;
      }
      if (link === this.#next) {
        this.#next = undefined;
        if (!this.#link) {
          // Both are gone: reconnect.
          this.#replacing = false;
          this.#retry();
          return;
        }
        // The replacement failed: the current socket carries on; try again later.
        this.#replacementFailed();
        return;
      }
      if (link !== this.#link) return;
      this.#link = undefined;
      if (this.#next) {
        // The current socket went first: the replacement takes over.
        return;
      }
      this.#retry();
    };
  }

  #delay(): number {
    const ceiling = Math.min(this.#options.maxDelayMs, this.#options.initialDelayMs * 2 ** this.#attempt);
    return Math.random() * ceiling;
  }

  #retry(): void {
    const delay = this.#delay();
    this.#attempt += 1;
    this.#setState('reconnecting');
    this.#later(delay, () => void this.#open('reconnecting'));
  }

  async #onOpen(link: Link, replacing: boolean): Promise<void> {
    const topics = [...this.#handlers.keys()];
    try {
      await this.#resubscribe(link, topics);
    } catch (error) {
      // Not subscribed (no reply, or the socket went): this socket must not carry on as if
      // it were. A replacement is dropped and the current socket stays; a reconnect's socket
      // is closed, and its close retries with backoff.
      this.#emit('error', new Error(`resubscribing failed: ${error instanceof Error ? error.message : String(error)}`));
      if (this.#isClosed()) return;
      if (replacing && this.#next === link) {
        this.#next = undefined;
        link.socket.onclose = null;
        this.#failPending(link, new Error('the replacement socket was dropped'));
        link.socket.close(1000, 'resubscribe failed');
        this.#replacementFailed();
        // The current socket went meanwhile: reconnect.
        if (!this.#link) this.#retry();
      } else if (link === this.#link) {
        link.socket.close(4001, 'resubscribe failed');
      }
      return;
    }
    if (this.#isClosed()) return;
    this.#attempt = 0;
    if (replacing) {
      if (this.#next !== link) {
        // Superseded: nothing uses this socket.
        link.socket.onclose = null;
        link.socket.close(1000, 'superseded');
        return;
      }
      this.#replacing = false;
      const old = this.#link;
      this.#link = link;
      this.#next = undefined;
      if (old) {
        old.socket.onclose = null;
        this.#failPending(old, new Error('the socket was replaced'));
        old.socket.close(1000, 'replaced');
      }
    } else if (link === this.#link) {
      this.#setState('open');
    }
    this.#flushWaiters();
  }

  /**
   * Subscribes `link` to `topics` again, each from its last position, `topicsPerMessage` at
   * a time. Topics the server now refuses (a policy or a token that changed) are reported as
   * an error each and left; no reply at all throws.
   */
  async #resubscribe(link: Link, topics: string[]): Promise<void> {
    const chunk = this.#options.topicsPerMessage;
    for (let start = 0; start < topics.length; start += chunk) {
      const part = topics.slice(start, start + chunk);
      let reply: Reply;
      try {
        reply = await this.#request(link, { action: 'subscribe', topics: part, ...this.#since(part) });
      } catch (error) {
        if (!(error instanceof ServerError)) throw error;
        this.#emit('error', new ServerError(`resubscribing ${part.join(', ')} was refused: ${error.message}`));
        continue;
      }
      for (const stream of reply.gaps ?? []) this.#gap(stream);
    }
  }

  /** The replacement socket failed: the current one carries on, and the next try waits. */
  #replacementFailed(): void {
    this.#replacing = false;
    this.#replaceNotBefore = Date.now() + this.#delay();
  }

  #since(topics: string[]): { since?: Record<string, Position> } {
    const since: Record<string, Position> = {};
    for (const topic of topics) {
      const last = this.#streams.get(topic)?.last;
      if (last) since[topic] = last;
    }
    return Object.keys(since).length > 0 ? { since } : {};
  }

  #waiters: Array<{ resolve: (link: Link) => void; reject: (error: Error) => void }> = [];

  #whenOpen(): Promise<Link> {
    if (this.#state === 'open' && this.#link?.socket.readyState === OPEN) {
      return Promise.resolve(this.#link);
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #flushWaiters(): void {
    const link = this.#link;
    if (!link) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.resolve(link);
  }

  #send(link: Link, message: object): void {
    link.socket.send(JSON.stringify(message));
    link.lastSent = Date.now();
  }

  /** Sends a route message with an `id` and waits for its reply. */
  #request(link: Link, message: object): Promise<Reply> {
    const id = String(++this.#ids);
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        link.pending.delete(id);
        reject(new Error(`no reply within ${this.#options.requestTimeoutMs} ms`));
      }, this.#options.requestTimeoutMs);
      link.pending.set(id, {
        resolve: (reply) => {
          if (reply.ok) resolve(reply);
          else reject(new ServerError(reply.error ?? 'refused'));
        },
        reject,
        timer,
      });
      try {
        this.#send(link, { ...message, id });
      } catch (error) {
        clearTimeout(timer);
        link.pending.delete(id);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  #tick(): void {
    const now = Date.now();
    for (const link of [this.#link, this.#next]) {
      if (!link || link.socket.readyState !== OPEN) continue;
      if (link.pingSentAt > 0 && link.lastReceived < link.pingSentAt
        && now - link.pingSentAt >= this.#options.pongTimeoutMs) {
        // Nothing came back since the ping: the socket is dead without knowing it.
        link.socket.close(4000, 'no pong');
        continue;
      }
      if (now - link.lastSent >= this.#options.heartbeatMs) {
        try {
          this.#send(link, { action: 'ping' });
          link.pingSentAt = now;
        } catch {
          // The close event follows.
        }
      }
    }
    const link = this.#link;
    if (link && !this.#next && !this.#replacing && now >= this.#replaceNotBefore
      && link.opened > 0 && now - link.opened >= this.#options.maxConnectionMs) {
      void this.#open('open', true);
    }
  }

  #onMessage(link: Link, text: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.#emit('message', text);
      return;
    }
    if (isReply(value)) {
      const pending = value.id === undefined ? undefined : link.pending.get(value.id);
      if (pending && value.id !== undefined) {
        link.pending.delete(value.id);
        clearTimeout(pending.timer);
        pending.resolve(value);
      }
      return;
    }
    if (typeof value === 'object' && value !== null && (value as { action?: unknown }).action === 'pong') {
      return;
    }
    if (isEnvelope(value)) {
      this.#onEnvelope(value);
      return;
    }
    if (isPresenceEvent(value)) {
      this.#emit('presence', value.presence);
      return;
    }
    // No positions: the server does not say which topic. Handlers of topics that never
    // carried positions get it; with none, `message` listeners do.
    let handled = false;
    for (const [topic, handlers] of this.#handlers) {
      if (this.#streams.get(topic)?.history) continue;
      for (const handler of handlers) {
        handled = true;
        this.#call(handler, value, { positions: {} });
      }
    }
    if (!handled) this.#emit('message', value);
  }

  #stream(name: string): StreamState {
    let stream = this.#streams.get(name);
    if (!stream) {
      stream = { early: new Map(), history: true };
      this.#streams.set(name, stream);
    }
    return stream;
  }

  /**
   * The streams a message is ordered by: those of its positions that are subscribed here,
   * or all of them when none is (a user's own channel nobody subscribed to).
   */
  #orderedBy(envelope: Envelope): string[] {
    const names = Object.keys(envelope.positions);
    const subscribed = names.filter((name) => this.#handlers.has(name));
    return subscribed.length > 0 ? subscribed : names;
  }

  #standing(name: string, position: Position): Standing {
    const stream = this.#stream(name);
    const last = stream.last;
    if (last === undefined) {
      const floor = stream.floor;
      const repeat = floor !== undefined && floor.epoch === position.epoch && position.seq <= floor.seq;
      return repeat ? 'seen' : 'next';
    }
    if (position.seq <= last.seq) return 'seen';
    return position.seq === last.seq + 1 ? 'next' : 'early';
  }

  #onEnvelope(envelope: Envelope): void {
    const names = this.#orderedBy(envelope);
    if (names.length === 0) return;
    for (const name of names) {
      const last = this.#streams.get(name)?.last;
      const position = envelope.positions[name] as Position;
      if (last !== undefined && last.epoch !== position.epoch) {
        // The stream's history was lost (another epoch): whatever came before is gone.
        this.#gap(name, { restart: true });
      }
    }
    const standings = names.map((name) => this.#standing(name, envelope.positions[name] as Position));
    // A message handed on through one stream is the same message in every other.
    const held: Held = { envelope, delivered: standings.includes('seen') };
    names.forEach((name, i) => {
      if (standings[i] === 'early') {
        this.#stream(name).early.set((envelope.positions[name] as Position).seq, held);
      }
    });
    this.#settle(held);
    this.#drain(names);
  }

  /**
   * Hands `held` on if every stream it is ordered by has reached it, and moves those
   * streams past it; whether it could.
   */
  #settle(held: Held): boolean {
    const names = this.#orderedBy(held.envelope);
    const standings = names.map((name) => this.#standing(name, held.envelope.positions[name] as Position));
    if (standings.includes('early')) return false;
    if (!held.delivered) {
      held.delivered = true;
      this.#handOn(held.envelope);
    }
    names.forEach((name, i) => {
      const position = held.envelope.positions[name] as Position;
      const stream = this.#stream(name);
      if (stream.early.get(position.seq) === held) stream.early.delete(position.seq);
      if (standings[i] === 'next') {
        stream.last = { seq: position.seq, epoch: position.epoch };
        stream.floor = undefined;
      }
    });
    // Positions in streams it is not ordered by are remembered for a later subscribe.
    for (const [name, position] of Object.entries(held.envelope.positions)) {
      if (names.includes(name)) continue;
      const stream = this.#stream(name);
      if (stream.last === undefined || stream.last.epoch !== position.epoch || position.seq > stream.last.seq) {
        stream.last = { seq: position.seq, epoch: position.epoch };
      }
    }
    return true;
  }

  /** Hands on what came early and is now next, in each of `names` and what that unblocks. */
  #drain(names: Iterable<string>): void {
    const work = new Set(names);
    while (work.size > 0) {
      const name = work.values().next().value as string;
      work.delete(name);
      const stream = this.#stream(name);
      for (;;) {
        const next = stream.last === undefined ? undefined : stream.early.get(stream.last.seq + 1);
        if (!next || !this.#settle(next)) break;
        for (const other of this.#orderedBy(next.envelope)) if (other !== name) work.add(other);
      }
      this.#armHole(name);
    }
  }

  /** A hole in `name` gets `holeTimeoutMs` to fill while messages wait behind it. */
  #armHole(name: string): void {
    const stream = this.#stream(name);
    if (stream.early.size === 0) {
      if (stream.holeTimer) clearTimeout(stream.holeTimer);
      stream.holeTimer = undefined;
    } else if (!stream.holeTimer) {
      stream.holeTimer = setTimeout(() => this.#closeHole(name), this.#options.holeTimeoutMs);
    }
  }

  /** A hole that stayed open: report the gap and hand on what came after it. */
  #closeHole(name: string): void {
    const stream = this.#stream(name);
    stream.holeTimer = undefined;
    if (stream.early.size === 0) return;
    if (this.#state !== 'open') {
      // Away: the resume after the reconnect may still fill it from history.
      this.#armHole(name);
      return;
    }
    this.#gap(name);
  }

  #handOn(envelope: Envelope): void {
    const meta: MessageMeta = { positions: envelope.positions };
    const targets = new Set<Handler>();
    for (const stream of Object.keys(envelope.positions)) {
      for (const handler of this.#handlers.get(stream) ?? []) targets.add(handler);
    }
    if (targets.size === 0) this.#emit('message', envelope.data);
    for (const handler of targets) this.#call(handler, envelope.data, meta);
  }

  #call(handler: Handler, data: unknown, meta: MessageMeta): void {
    try {
      handler(data, meta);
    } catch (error) {
      this.#emit('error', error instanceof Error ? error : new Error(String(error)));
    }
  }

  /**
   * Reports a gap in `name`, and carries on from what came after it. With `restart` (a new
   * epoch), what was held early belongs to the lost history and is dropped.
   */
  #gap(name: string, { restart = false } = {}): void {
    const stream = this.#streams.get(name);
    this.#emit('gap', name);
    if (!stream) return;
    if (stream.holeTimer) clearTimeout(stream.holeTimer);
    stream.holeTimer = undefined;
    const previous = stream.last ?? stream.floor;
    stream.last = undefined;
    stream.floor = restart ? undefined : previous;
    if (restart) stream.early.clear();
    if (stream.early.size === 0) return;
    const first = Math.min(...stream.early.keys());
    const held = stream.early.get(first) as Held;
    const epoch = (held.envelope.positions[name] as Position).epoch;
    stream.last = { seq: first - 1, epoch };
    stream.floor = undefined;
    this.#drain([name]);
  }
}

/** Connects to a wspush WebSocket API (`wss://.../stage`, or the local gateway's `ws://127.0.0.1:8080/local`). */
export function connect(url: string, options: ConnectOptions = {}): WspushClient {
  return new WspushClient(url, options);
}
