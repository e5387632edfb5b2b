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
    state: (state: State, detail?: {
        reason?: CloseReason | string;
    }) => void;
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
    onclose: ((event: {
        code: number;
        reason: string;
    }) => void) | null;
    onerror: ((event: unknown) => void) | null;
    onmessage: ((event: {
        data: unknown;
    }) => void) | null;
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
/** A refusal of the server, with its words. */
export declare class ServerError extends Error {
    readonly status?: number | undefined;
    constructor(message: string, status?: number | undefined);
}
/** A client: one logical connection over the sockets it opens. */
export declare class WspushClient {
    #private;
    constructor(url: string, options?: ConnectOptions);
    /** The current state. */
    get state(): State;
    /** Listens to `event`; returns a function that stops listening. */
    on<K extends keyof Events>(event: K, listener: Events[K]): () => void;
    /**
     * Subscribes to `topic`, handing its messages to `handler`. Resolves once the server
     * replied ok; rejects with the server's error (denied, too many topics, not granted).
     * Kept across reconnects, resumed from the last position.
     */
    subscribe(topic: string, handler: Handler): Promise<void>;
    /**
     * Who is in `topic` (a topic that keeps presence, subscribed here): distinct users with a
     * live connection subscribed, at most `limit` (default 100, at most 1,000) of them.
     */
    presence(topic: string, options?: {
        limit?: number;
    }): Promise<Members>;
    /** Unsubscribes from `topic` (every handler of it). */
    unsubscribe(topic: string): Promise<void>;
    /**
     * Drops the current socket and opens a new one, resuming every stream from its last
     * position: for a network change (the browser's `online` event), or to see a resume.
     */
    reconnect(): void;
    /** Closes the client: no reconnect. */
    close(): void;
}
/** Connects to a wspush WebSocket API (`wss://.../stage`, or the local gateway's `ws://127.0.0.1:8080/local`). */
export declare function connect(url: string, options?: ConnectOptions): WspushClient;
