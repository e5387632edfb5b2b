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
const OPEN = 1;
/** A refusal of the server, with its words. */
export class ServerError extends Error {
    status;
    constructor(message, status) {
        super(message);
        this.status = status;
        this.name = 'ServerError';
    }
}
/** One socket of the client, and the requests waiting for its replies. */
class Link {
    socket;
    pending = new Map();
    opened = 0;
    lastSent = 0;
    lastReceived = 0;
    pingSentAt = 0;
    constructor(socket) {
        this.socket = socket;
    }
}
function decodeJwtExpiry(token) {
    const parts = token.split('.');
    if (parts.length !== 3 || !parts[1])
        return undefined;
    try {
        const json = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
        const exp = JSON.parse(json).exp;
        return typeof exp === 'number' ? exp : undefined;
    }
    catch {
        return undefined;
    }
}
function isEnvelope(value) {
    if (typeof value !== 'object' || value === null)
        return false;
    const record = value;
    const keys = Object.keys(record);
    return keys.length === 2 && 'data' in record && typeof record.positions === 'object'
        && record.positions !== null;
}
function isPresenceEvent(value) {
    if (typeof value !== 'object' || value === null)
        return false;
    const keys = Object.keys(value);
    const event = value.presence;
    return keys.length === 1 && keys[0] === 'presence' && typeof event === 'object' && event !== null
        && typeof event.topic === 'string' && typeof event.user === 'string'
        && (event.event === 'join' || event.event === 'leave');
}
function isReply(value) {
    return typeof value === 'object' && value !== null && typeof value.ok === 'boolean'
        && ('action' in value);
}
/** A client: one logical connection over the sockets it opens. */
export class WspushClient {
    #options;
    #url;
    #state = 'connecting';
    #link;
    /** The socket being opened to replace `#link` (make before break). */
    #next;
    #handlers = new Map();
    #streams = new Map();
    #listeners = {
        presence: new Set(), state: new Set(), gap: new Set(), message: new Set(), error: new Set(),
    };
    #attempt = 0;
    #ids = 0;
    /** A replacement socket is being opened (from its token to its resubscribe). */
    #replacing = false;
    /** After a failed replacement, the next is not tried before this time. */
    #replaceNotBefore = 0;
    #timers = new Set();
    #ticker;
    #lastToken;
    constructor(url, options = {}) {
        const WebSocketImpl = options.WebSocket
            ?? globalThis.WebSocket;
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
    #isClosed() {
        return this.#state === 'closed';
    }
    /** The current state. */
    get state() {
        return this.#state;
    }
    /** Listens to `event`; returns a function that stops listening. */
    on(event, listener) {
        this.#listeners[event].add(listener);
        return () => this.#listeners[event].delete(listener);
    }
    /**
     * Subscribes to `topic`, handing its messages to `handler`. Resolves once the server
     * replied ok; rejects with the server's error (denied, too many topics, not granted).
     * Kept across reconnects, resumed from the last position.
     */
    async subscribe(topic, handler) {
        if (this.#isClosed())
            throw new Error('the client is closed');
        const first = !this.#handlers.has(topic);
        let handlers = this.#handlers.get(topic);
        if (!handlers) {
            handlers = new Set();
            this.#handlers.set(topic, handlers);
        }
        handlers.add(handler);
        if (!first)
            return;
        try {
            const link = await this.#whenOpen();
            await this.#request(link, { action: 'subscribe', topics: [topic], ...this.#since([topic]) });
        }
        catch (error) {
            this.#handlers.delete(topic);
            throw error;
        }
    }
    /**
     * Who is in `topic` (a topic that keeps presence, subscribed here): distinct users with a
     * live connection subscribed, at most `limit` (default 100, at most 1,000) of them.
     */
    async presence(topic, options = {}) {
        if (this.#isClosed())
            throw new Error('the client is closed');
        const link = await this.#whenOpen();
        const reply = await this.#request(link, {
            action: 'presence',
            topic,
            ...(options.limit === undefined ? {} : { limit: options.limit }),
        });
        return { users: reply.users ?? [], total: reply.total ?? 0 };
    }
    /** Unsubscribes from `topic` (every handler of it). */
    async unsubscribe(topic) {
        if (!this.#handlers.delete(topic))
            return;
        this.#streams.delete(topic);
        if (this.#isClosed())
            return;
        const link = await this.#whenOpen();
        await this.#request(link, { action: 'unsubscribe', topics: [topic] });
    }
    /**
     * Drops the current socket and opens a new one, resuming every stream from its last
     * position: for a network change (the browser's `online` event), or to see a resume.
     */
    reconnect() {
        if (this.#isClosed())
            return;
        this.#link?.socket.close(4001, 'reconnect');
    }
    /** Closes the client: no reconnect. */
    close() {
        this.#shut('closed by the application');
    }
    #emit(event, ...args) {
        for (const listener of this.#listeners[event]) {
            try {
                listener(...args);
            }
            catch (error) {
                if (event !== 'error')
                    this.#emit('error', error instanceof Error ? error : new Error(String(error)));
            }
        }
    }
    #setState(state, reason) {
        if (this.#state === state)
            return;
        this.#state = state;
        this.#emit('state', state, reason === undefined ? undefined : { reason });
    }
    #later(ms, run) {
        const timer = setTimeout(() => {
            this.#timers.delete(timer);
            run();
        }, ms);
        this.#timers.add(timer);
        return timer;
    }
    #shut(reason) {
        if (this.#isClosed())
            return;
        for (const timer of this.#timers)
            clearTimeout(timer);
        this.#timers.clear();
        if (this.#ticker)
            clearInterval(this.#ticker);
        for (const stream of this.#streams.values()) {
            if (stream.holeTimer)
                clearTimeout(stream.holeTimer);
        }
        for (const link of [this.#link, this.#next]) {
            if (!link)
                continue;
            this.#failPending(link, new Error(`the client closed: ${reason}`));
            link.socket.onclose = null;
            link.socket.close(1000, reason);
        }
        this.#link = undefined;
        this.#next = undefined;
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const waiter of waiters)
            waiter.reject(new Error(`the client closed: ${reason}`));
        this.#setState('closed', reason);
    }
    #failPending(link, error) {
        for (const pending of link.pending.values()) {
            clearTimeout(pending.timer);
            pending.reject(error);
        }
        link.pending.clear();
    }
    /** The URL of the next socket, with a fresh token; `null` when `token()` said there is none. */
    async #socketUrl() {
        const url = new URL(this.#url);
        for (const [key, value] of Object.entries(this.#options.params ?? {})) {
            url.searchParams.set(key, value);
        }
        if (this.#options.token) {
            const token = await this.#options.token();
            if (token === null)
                return null;
            this.#lastToken = token;
            url.searchParams.set(this.#options.tokenParam, token);
        }
        return url.toString();
    }
    /** Opens a socket: the first, a reconnect, or the next one before the cap (`replacing`). */
    async #open(state, replacing = false) {
        if (this.#isClosed())
            return;
        if (replacing)
            this.#replacing = true;
        else
            this.#setState(state);
        let url;
        try {
            url = await this.#socketUrl();
        }
        catch (error) {
            this.#emit('error', new Error(`the token callback failed: ${String(error)}`));
            if (replacing)
                this.#replacementFailed();
            else
                this.#retry();
            return;
        }
        if (this.#isClosed())
            return;
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
        let socket;
        try {
            socket = new this.#options.WebSocket(url);
        }
        catch (error) {
            this.#emit('error', error instanceof Error ? error : new Error(String(error)));
            if (replacing)
                this.#replacementFailed();
            else
                this.#retry();
            return;
        }
        const link = new Link(socket);
        if (replacing)
            this.#next = link;
        else
            this.#link = link;
        let opened = false;
        let unauthorized = false;
        socket.onopen = () => {
            opened = true;
            link.opened = Date.now();
            link.lastReceived = link.opened;
            link.lastSent = link.opened;
            void this.#onOpen(link, replacing);
        };
        socket.onerror = (event) => {
            // `ws` names the handshake's status; browsers give nothing.
            const message = String(event?.message ?? '');
            if (/\b401\b/.test(message))
                unauthorized = true;
        };
        socket.onmessage = (event) => {
            link.lastReceived = Date.now();
            this.#onMessage(link, typeof event.data === 'string' ? event.data : String(event.data));
        };
        socket.onclose = () => {
            this.#failPending(link, new Error('the socket closed before the reply'));
            if (this.#isClosed())
                return;
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
            if (link !== this.#link)
                return;
            this.#link = undefined;
            if (this.#next) {
                // The current socket went first: the replacement takes over.
                return;
            }
            this.#retry();
        };
    }
    #delay() {
        const ceiling = Math.min(this.#options.maxDelayMs, this.#options.initialDelayMs * 2 ** this.#attempt);
        return Math.random() * ceiling;
    }
    #retry() {
        const delay = this.#delay();
        this.#attempt += 1;
        this.#setState('reconnecting');
        this.#later(delay, () => void this.#open('reconnecting'));
    }
    async #onOpen(link, replacing) {
        const topics = [...this.#handlers.keys()];
        try {
            await this.#resubscribe(link, topics);
        }
        catch (error) {
            // Not subscribed (no reply, or the socket went): this socket must not carry on as if
            // it were. A replacement is dropped and the current socket stays; a reconnect's socket
            // is closed, and its close retries with backoff.
            this.#emit('error', new Error(`resubscribing failed: ${error instanceof Error ? error.message : String(error)}`));
            if (this.#isClosed())
                return;
            if (replacing && this.#next === link) {
                this.#next = undefined;
                link.socket.onclose = null;
                this.#failPending(link, new Error('the replacement socket was dropped'));
                link.socket.close(1000, 'resubscribe failed');
                this.#replacementFailed();
                // The current socket went meanwhile: reconnect.
                if (!this.#link)
                    this.#retry();
            }
            else if (link === this.#link) {
                link.socket.close(4001, 'resubscribe failed');
            }
            return;
        }
        if (this.#isClosed())
            return;
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
        }
        else if (link === this.#link) {
            this.#setState('open');
        }
        this.#flushWaiters();
    }
    /**
     * Subscribes `link` to `topics` again, each from its last position, `topicsPerMessage` at
     * a time. Topics the server now refuses (a policy or a token that changed) are reported as
     * an error each and left; no reply at all throws.
     */
    async #resubscribe(link, topics) {
        const chunk = this.#options.topicsPerMessage;
        for (let start = 0; start < topics.length; start += chunk) {
            const part = topics.slice(start, start + chunk);
            let reply;
            try {
                reply = await this.#request(link, { action: 'subscribe', topics: part, ...this.#since(part) });
            }
            catch (error) {
                if (!(error instanceof ServerError))
                    throw error;
                this.#emit('error', new ServerError(`resubscribing ${part.join(', ')} was refused: ${error.message}`));
                continue;
            }
            for (const stream of reply.gaps ?? [])
                this.#gap(stream);
        }
    }
    /** The replacement socket failed: the current one carries on, and the next try waits. */
    #replacementFailed() {
        this.#replacing = false;
        this.#replaceNotBefore = Date.now() + this.#delay();
    }
    #since(topics) {
        const since = {};
        for (const topic of topics) {
            const last = this.#streams.get(topic)?.last;
            if (last)
                since[topic] = last;
        }
        return Object.keys(since).length > 0 ? { since } : {};
    }
    #waiters = [];
    #whenOpen() {
        if (this.#state === 'open' && this.#link?.socket.readyState === OPEN) {
            return Promise.resolve(this.#link);
        }
        return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
    }
    #flushWaiters() {
        const link = this.#link;
        if (!link)
            return;
        const waiters = this.#waiters;
        this.#waiters = [];
        for (const waiter of waiters)
            waiter.resolve(link);
    }
    #send(link, message) {
        link.socket.send(JSON.stringify(message));
        link.lastSent = Date.now();
    }
    /** Sends a route message with an `id` and waits for its reply. */
    #request(link, message) {
        const id = String(++this.#ids);
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                link.pending.delete(id);
                reject(new Error(`no reply within ${this.#options.requestTimeoutMs} ms`));
            }, this.#options.requestTimeoutMs);
            link.pending.set(id, {
                resolve: (reply) => {
                    if (reply.ok)
                        resolve(reply);
                    else
                        reject(new ServerError(reply.error ?? 'refused'));
                },
                reject,
                timer,
            });
            try {
                this.#send(link, { ...message, id });
            }
            catch (error) {
                clearTimeout(timer);
                link.pending.delete(id);
                reject(error instanceof Error ? error : new Error(String(error)));
            }
        });
    }
    #tick() {
        const now = Date.now();
        for (const link of [this.#link, this.#next]) {
            if (!link || link.socket.readyState !== OPEN)
                continue;
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
                }
                catch {
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
    #onMessage(link, text) {
        let value;
        try {
            value = JSON.parse(text);
        }
        catch {
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
        if (typeof value === 'object' && value !== null && value.action === 'pong') {
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
            if (this.#streams.get(topic)?.history)
                continue;
            for (const handler of handlers) {
                handled = true;
                this.#call(handler, value, { positions: {} });
            }
        }
        if (!handled)
            this.#emit('message', value);
    }
    #stream(name) {
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
    #orderedBy(envelope) {
        const names = Object.keys(envelope.positions);
        const subscribed = names.filter((name) => this.#handlers.has(name));
        return subscribed.length > 0 ? subscribed : names;
    }
    #standing(name, position) {
        const stream = this.#stream(name);
        const last = stream.last;
        if (last === undefined) {
            const floor = stream.floor;
            const repeat = floor !== undefined && floor.epoch === position.epoch && position.seq <= floor.seq;
            return repeat ? 'seen' : 'next';
        }
        if (position.seq <= last.seq)
            return 'seen';
        return position.seq === last.seq + 1 ? 'next' : 'early';
    }
    #onEnvelope(envelope) {
        const names = this.#orderedBy(envelope);
        if (names.length === 0)
            return;
        for (const name of names) {
            const last = this.#streams.get(name)?.last;
            const position = envelope.positions[name];
            if (last !== undefined && last.epoch !== position.epoch) {
                // The stream's history was lost (another epoch): whatever came before is gone.
                this.#gap(name, { restart: true });
            }
        }
        const standings = names.map((name) => this.#standing(name, envelope.positions[name]));
        // A message handed on through one stream is the same message in every other.
        const held = { envelope, delivered: standings.includes('seen') };
        names.forEach((name, i) => {
            if (standings[i] === 'early') {
                this.#stream(name).early.set(envelope.positions[name].seq, held);
            }
        });
        this.#settle(held);
        this.#drain(names);
    }
    /**
     * Hands `held` on if every stream it is ordered by has reached it, and moves those
     * streams past it; whether it could.
     */
    #settle(held) {
        const names = this.#orderedBy(held.envelope);
        const standings = names.map((name) => this.#standing(name, held.envelope.positions[name]));
        if (standings.includes('early'))
            return false;
        if (!held.delivered) {
            held.delivered = true;
            this.#handOn(held.envelope);
        }
        names.forEach((name, i) => {
            const position = held.envelope.positions[name];
            const stream = this.#stream(name);
            if (stream.early.get(position.seq) === held)
                stream.early.delete(position.seq);
            if (standings[i] === 'next') {
                stream.last = { seq: position.seq, epoch: position.epoch };
                stream.floor = undefined;
            }
        });
        // Positions in streams it is not ordered by are remembered for a later subscribe.
        for (const [name, position] of Object.entries(held.envelope.positions)) {
            if (names.includes(name))
                continue;
            const stream = this.#stream(name);
            if (stream.last === undefined || stream.last.epoch !== position.epoch || position.seq > stream.last.seq) {
                stream.last = { seq: position.seq, epoch: position.epoch };
            }
        }
        return true;
    }
    /** Hands on what came early and is now next, in each of `names` and what that unblocks. */
    #drain(names) {
        const work = new Set(names);
        while (work.size > 0) {
            const name = work.values().next().value;
            work.delete(name);
            const stream = this.#stream(name);
            for (;;) {
                const next = stream.last === undefined ? undefined : stream.early.get(stream.last.seq + 1);
                if (!next || !this.#settle(next))
                    break;
                for (const other of this.#orderedBy(next.envelope))
                    if (other !== name)
                        work.add(other);
            }
            this.#armHole(name);
        }
    }
    /** A hole in `name` gets `holeTimeoutMs` to fill while messages wait behind it. */
    #armHole(name) {
        const stream = this.#stream(name);
        if (stream.early.size === 0) {
            if (stream.holeTimer)
                clearTimeout(stream.holeTimer);
            stream.holeTimer = undefined;
        }
        else if (!stream.holeTimer) {
            stream.holeTimer = setTimeout(() => this.#closeHole(name), this.#options.holeTimeoutMs);
        }
    }
    /** A hole that stayed open: report the gap and hand on what came after it. */
    #closeHole(name) {
        const stream = this.#stream(name);
        stream.holeTimer = undefined;
        if (stream.early.size === 0)
            return;
        if (this.#state !== 'open') {
            // Away: the resume after the reconnect may still fill it from history.
            this.#armHole(name);
            return;
        }
        this.#gap(name);
    }
    #handOn(envelope) {
        const meta = { positions: envelope.positions };
        const targets = new Set();
        for (const stream of Object.keys(envelope.positions)) {
            for (const handler of this.#handlers.get(stream) ?? [])
                targets.add(handler);
        }
        if (targets.size === 0)
            this.#emit('message', envelope.data);
        for (const handler of targets)
            this.#call(handler, envelope.data, meta);
    }
    #call(handler, data, meta) {
        try {
            handler(data, meta);
        }
        catch (error) {
            this.#emit('error', error instanceof Error ? error : new Error(String(error)));
        }
    }
    /**
     * Reports a gap in `name`, and carries on from what came after it. With `restart` (a new
     * epoch), what was held early belongs to the lost history and is dropped.
     */
    #gap(name, { restart = false } = {}) {
        const stream = this.#streams.get(name);
        this.#emit('gap', name);
        if (!stream)
            return;
        if (stream.holeTimer)
            clearTimeout(stream.holeTimer);
        stream.holeTimer = undefined;
        const previous = stream.last ?? stream.floor;
        stream.last = undefined;
        stream.floor = restart ? undefined : previous;
        if (restart)
            stream.early.clear();
        if (stream.early.size === 0)
            return;
        const first = Math.min(...stream.early.keys());
        const held = stream.early.get(first);
        const epoch = held.envelope.positions[name].epoch;
        stream.last = { seq: first - 1, epoch };
        stream.floor = undefined;
        this.#drain([name]);
    }
}
/** Connects to a wspush WebSocket API (`wss://.../stage`, or the local gateway's `ws://127.0.0.1:8080/local`). */
export function connect(url, options = {}) {
    return new WspushClient(url, options);
}
