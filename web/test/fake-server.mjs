// A scripted stand-in for the signalling server's WebSocket, for the node unit tests of the
// client's state machine (node 20 has no WebSocket; the real server is exercised by the
// browser tests in tests/web_*.rs). Each `new FakeSocket(url)` the client makes is recorded;
// the test opens it, reads what the client sent and delivers server frames.

export class FakeServer {
  constructor() {
    /** @type {FakeSocket[]} */ this.sockets = [];
    const server = this;
    this.WebSocket = class extends FakeSocket {
      constructor(url) {
        super(url);
        server.sockets.push(this);
      }
    };
  }

  /** The `i`-th socket the client opened (0 first), once it exists. */
  async socket(i, ms = 3000) {
    await until(`the client's socket #${i}`, () => this.sockets.length > i, ms);
    return this.sockets[i];
  }
}

export class FakeSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** Frames the client sent, parsed. */ this.sent = [];
    this._waiters = [];
  }

  send(text) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(text));
    this._waiters.splice(0).forEach((w) => w());
  }

  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code: 1000 }));
  }

  /** Server side: accept the connection. */
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  /** Server side: send one frame to the client. */
  deliver(obj) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }

  /** Server side: the connection drops. */
  drop() {
    this.close();
  }

  /** Resolve once the client has sent `n` frames in all on this socket. */
  async waitSent(n, ms = 2000) {
    const deadline = Date.now() + ms;
    while (this.sent.length < n) {
      if (Date.now() > deadline) throw new Error(`client sent ${this.sent.length} frames, expected ${n}: ${JSON.stringify(this.sent)}`);
      await new Promise((r) => { this._waiters.push(r); setTimeout(r, 20); });
    }
    return this.sent;
  }
}

/** A `welcome` as the server sends it (docs/protocol.md), with overrides. */
export function welcome(over = {}) {
  return {
    type: 'welcome', v: 1, peer_id: 'me-1', room: 'r', user: 'me', name: 'Me',
    grants: ['publish', 'subscribe', 'message'], resume_token: 'rt-1', grace_ms: 30000,
    peers: [], offer_to: [], ice_servers: [],
    limits: { max_frame_bytes: 131072, max_payload_bytes: 65536, rate_per_sec: 200, burst: 400, max_peers_per_room: 100 },
    ...over,
  };
}

/** Collect the `detail` of every `type` event of `target`. */
export function record(target, type) {
  const out = [];
  target.addEventListener(type, (e) => out.push(e.detail));
  return out;
}

/** Wait until `cond()` is truthy (bounded). */
export async function until(what, cond, ms = 2000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
