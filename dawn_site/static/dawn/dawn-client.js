// DAWN's stream client, an ES module with no build step: import { DawnClient } from "/static/dawn/dawn-client.js".
//
// It connects to /ws (msgpack when it can, JSON otherwise), reconnects with exponential backoff and full
// jitter honouring the close codes, resumes with the epoch and the last tick so the application sees every
// tick_number once, estimates the clock offset and the latency, and offers values interpolated one tick
// behind (extrapolated briefly when a tick is late). The protocol is the README's "/ws protocol" section.
import { decode, encode } from "./vendor/msgpack/index.mjs";

export const CLOSE = {
  SERVER_RESTART: 1012, // reconnect soon and resume
  SLOW_CLIENT: 4001, // reconnect and resume
  UNAUTHORISED: 4003, // do not retry as is
  PROTOCOL_ABUSE: 4008, // wait long before coming back
};
const SUBPROTOCOL = "dawn.msgpack";
const HISTORY_KEPT = 600; // ticks kept for interpolation and for the application to read

export class DawnClient extends EventTarget {
  constructor(url, { binary = true, backoffBase = 250, backoffCap = 10000, pingEvery = 5000 } = {}) {
    super();
    this.url = url;
    this.binary = binary && typeof WebSocket !== "undefined";
    this.backoffBase = backoffBase;
    this.backoffCap = backoffCap;
    this.pingEvery = pingEvery;
    this.state = "idle"; // idle, connecting, open, reconnecting, unauthorised, closed
    this.epoch = null;
    this.last = null; // newest tick_number handed to the application
    this.tickRate = null;
    this.clients = null;
    this.protocol = null;
    this.reconnects = 0;
    this.attempt = 0;
    this.clockOffset = 0; // ms to add to Date.now() to get the server's clock
    this.rtt = null; // ms, from ping/pong
    this.latency = null; // ms, tick arrival minus its timestamp on the server's clock (smoothed)
    this.ticks = []; // the latest ticks, oldest first, each with .arrived (local ms)
    this.seen = []; // every tick_number delivered, in order (the tests check it has no gap or repeat)
    this._offsets = [];
    this._pending = new Map();
    this._nextRef = 1;
    this._ws = null;
    this._timer = null;
    this._stopped = false;
  }

  connect() {
    this._stopped = false;
    this._open();
    return this;
  }

  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    clearInterval(this._pinger);
    if (this._ws) this._ws.close(1000);
    this._setState("closed");
  }

  _wsUrl() {
    const url = new URL(this.url, location.href);
    url.protocol = url.protocol.replace("http", "ws");
    if (this.epoch && this.last !== null) {
      url.searchParams.set("epoch", this.epoch);
      url.searchParams.set("since", String(this.last));
    }
    return url.toString();
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  _open() {
    this._setState(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this._wsUrl(), this.binary ? [SUBPROTOCOL] : []);
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    ws.onopen = () => {
      if (this.attempt) this.reconnects += 1;
      this.attempt = 0;
      this.protocol = ws.protocol === SUBPROTOCOL ? "msgpack" : "json";
      this._setState("open");
      this._ping();
      clearInterval(this._pinger);
      this._pinger = setInterval(() => this._ping(), this.pingEvery);
    };
    ws.onmessage = (event) => {
      const message = typeof event.data === "string" ? JSON.parse(event.data) : decode(new Uint8Array(event.data));
      this._absorb(message);
    };
    ws.onclose = (event) => {
      clearInterval(this._pinger);
      this._ws = null;
      for (const { reject } of this._pending.values()) reject(new Error("connection closed"));
      this._pending.clear();
      this.dispatchEvent(new CustomEvent("close", { detail: { code: event.code, reason: event.reason } }));
      if (this._stopped) return;
      if (event.code === CLOSE.UNAUTHORISED) {
        this._setState("unauthorised");
        return;
      }
      this._setState("reconnecting");
      // exponential backoff with full jitter: clients dropped together do not come back together
      const ceiling = Math.min(this.backoffCap, this.backoffBase * 2 ** this.attempt);
      const delay = event.code === CLOSE.PROTOCOL_ABUSE ? this.backoffCap : Math.random() * ceiling;
      this.attempt += 1;
      this._timer = setTimeout(() => this._open(), delay);
    };
  }

  /** Send a request; resolves with its answer (matched by ref), rejects with its error frame's data. */
  request(message) {
    const ref = message.ref ?? `r${this._nextRef++}`;
    return new Promise((resolve, reject) => {
      if (!this._ws || this._ws.readyState !== WebSocket.OPEN) {
        reject(Object.assign(new Error("not connected"), { code: "not_connected", ref }));
        return;
      }
      this._pending.set(ref, { resolve, reject });
      const full = { ...message, ref };
      this._ws.send(this.protocol === "msgpack" ? encode(full) : JSON.stringify(full));
    });
  }

  /** A stimulus; resolves with {ref, tick_number} once the tick that applied it says so. */
  stimulus(kind, intensity) {
    return this.request({ type: "stimulus", kind, intensity });
  }

  /** An engine control command (pause, resume, step {ticks}, rate {rate}); resolves with its `control` data. */
  control(action, fields = {}) {
    return this.request({ type: "control", action, ...fields });
  }

  _ping() {
    const sent = Date.now();
    this.request({ type: "ping", data: sent }).then((data) => {
      const now = Date.now();
      this.rtt = now - sent;
      // NTP's estimate: the server read its clock halfway through the round trip
      this._offsets.push(data.time * 1000 - (sent + now) / 2);
      if (this._offsets.length > 9) this._offsets.shift();
      const sorted = [...this._offsets].sort((a, b) => a - b);
      this.clockOffset = sorted[Math.floor(sorted.length / 2)];
    }, () => {});
  }

  _absorb(message) {
    const { type, data } = message;
    const ref = data && typeof data === "object" ? data.ref : undefined;
    if (type === "connection") {
      this.epoch = data.epoch || this.epoch;
      this.tickRate = data.tick_rate;
      this.clients = data.clients;
      if (this.last === null && data.tick) this._take(data.tick);
    } else if (type === "resumed") {
      this.epoch = data.epoch;
    } else if (type === "resume_failed") {
      // another run of history, or a range no longer kept: start again from the snapshot
      this.epoch = data.epoch;
      this.last = null;
      if (data.tick) this._take(data.tick);
    } else if (type === "heartbeat_response") {
      this.epoch = data.epoch || this.epoch;
    } else if (type === "tick") {
      this._take(data);
      if (!this.epoch) this.request({ type: "heartbeat" }).then((d) => { this.epoch = d.epoch || this.epoch; }, () => {});
      return; // "tick" events come from _take, once per tick_number
    }
    if (ref !== undefined && ref !== null && this._pending.has(ref)) {
      const { resolve, reject } = this._pending.get(ref);
      this._pending.delete(ref);
      if (type === "error") reject(Object.assign(new Error(data.message), data));
      else resolve(data);
    }
    this.dispatchEvent(new CustomEvent(type, { detail: data }));
  }

  _take(tick) {
    if (this.last !== null && tick.tick_number <= this.last) return false;
    this.last = tick.tick_number;
    const arrived = Date.now();
    const lag = arrived + this.clockOffset - tick.timestamp * 1000;
    this.latency = this.latency === null ? lag : this.latency + 0.1 * (lag - this.latency);
    this.ticks.push({ ...tick, arrived });
    if (this.ticks.length > HISTORY_KEPT) this.ticks.shift();
    this.seen.push(tick.tick_number);
    this.dispatchEvent(new CustomEvent("tick", { detail: tick }));
    return true;
  }

  /** The server's clock now, in seconds. */
  serverNow() {
    return (Date.now() + this.clockOffset) / 1000;
  }

  /**
   * `field` (e.g. "scup") as it was one tick ago, interpolated between the two ticks around that moment;
   * when the next tick is late, extrapolated along the last slope for at most one more tick, then held.
   */
  sample(field, at = this.serverNow()) {
    const ticks = this.ticks;
    if (!ticks.length) return null;
    const period = 1 / (this.tickRate || 10);
    const t = at - period; // render one tick behind, so there is usually a tick on either side
    for (let i = ticks.length - 1; i > 0; i--) {
      const a = ticks[i - 1], b = ticks[i];
      if (a.timestamp <= t && t <= b.timestamp) {
        const f = (t - a.timestamp) / Math.max(b.timestamp - a.timestamp, 1e-6);
        return a[field] + f * (b[field] - a[field]);
      }
    }
    const last = ticks[ticks.length - 1];
    if (t < ticks[0].timestamp || ticks.length < 2) return (t < ticks[0].timestamp ? ticks[0] : last)[field];
    const prev = ticks[ticks.length - 2];
    const ahead = Math.min(t - last.timestamp, period); // a short prediction, never a long guess
    const slope = (last[field] - prev[field]) / Math.max(last.timestamp - prev.timestamp, 1e-6);
    return last[field] + slope * ahead;
  }
}
