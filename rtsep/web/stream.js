// rtsep browser client: one stream to `rtsep serve` in its documented protocol
// (see rtsep/service.py): a JSON config, "ready", then binary frames of n × 2
// interleaved little-endian samples, each answered by n × 2 [voice, background].
// Each frame sent is timestamped; answers come back in order, so the oldest
// timestamp belongs to the next answer: that difference is the network round trip.

export class Stream {
  /**
   * @param {string} url ws:// or wss:// URL of the server.
   * @param {object} config The config message (fs, channels, engine, format, block, token, ...).
   * @param {object} on Callbacks: ready(msg), answer(float32 [v,b] interleaved, tag, rttMs),
   *   stats(msg), swapped(msg), closed(code, reason, errorMessage).
   */
  constructor(url, config, on) {
    this.config = config;
    this.on = on;
    this.inflight = [];          // {t, tag} per frame sent and not answered yet, oldest first
    this.sent = 0;               // samples per channel sent
    this.received = 0;           // samples per channel answered
    this.frames = 0;
    this.dropped = 0;            // frames not sent because too much was already in flight
    this.maxInflightFrames = config.fs;  // one second of audio waiting for answers
    this.error = null;
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => this.ws.send(JSON.stringify(config));
    this.ws.onmessage = (e) => this.onMessage(e.data);
    this.ws.onclose = (e) => this.on.closed(e.code, e.reason, this.error);
    this.ws.onerror = () => { if (!this.error) this.error = `cannot reach ${url}`; };
    this.ready = null;
  }

  get open() { return this.ws.readyState === WebSocket.OPEN && this.ready !== null; }

  inflightFrames() { return this.sent - this.received; }

  /**
   * Send one frame. Returns false (and counts it dropped) when the server is behind.
   * @param {Float32Array} x Interleaved [mic1, mic2] samples, full scale ±1.
   * @param {any} tag Handed back with the answer.
   */
  send(x, tag) {
    if (!this.open) return false;
    const n = x.length / 2;
    if (this.inflightFrames() + n > this.maxInflightFrames) { this.dropped++; return false; }
    this.ws.send(encode(x, this.config.format));
    this.inflight.push({t: performance.now(), tag, n});
    this.sent += n;
    this.frames++;
    return true;
  }

  swap() { if (this.open) this.ws.send(JSON.stringify({type: "swap"})); }

  eof() { if (this.open) this.ws.send(JSON.stringify({type: "eof"})); }

  close() { try { this.ws.close(); } catch (e) { /* already closed */ } }

  onMessage(data) {
    if (typeof data === "string") {
      const m = JSON.parse(data);
      if (m.type === "ready") { this.ready = m; this.on.ready(m); }
      else if (m.type === "stats") this.on.stats(m);
      else if (m.type === "swapped") this.on.swapped(m);
      else if (m.type === "error") this.error = `server error ${m.code}: ${m.message}`;
      return;
    }
    const y = decode(data, this.config.out_format || this.config.format);
    const f = this.inflight.shift();
    this.received += y.length / 2;
    this.on.answer(y, f ? f.tag : null, f ? performance.now() - f.t : NaN);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Float32 interleaved → the wire's little-endian bytes. */
export function encode(x, format) {
  if (format === "float32") {
    if (LITTLE_ENDIAN) return Float32Array.from(x).buffer;
    const out = new DataView(new ArrayBuffer(x.length * 4));
    for (let i = 0; i < x.length; i++) out.setFloat32(4 * i, x[i], true);
    return out.buffer;
  }
  const q = new Int16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.round(x[i] * 32768);
    q[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
  }
  if (LITTLE_ENDIAN) return q.buffer;
  const out = new DataView(new ArrayBuffer(x.length * 2));
  for (let i = 0; i < q.length; i++) out.setInt16(2 * i, q[i], true);
  return out.buffer;
}

/** The wire's little-endian bytes → Float32 interleaved, full scale ±1. */
export function decode(buf, format) {
  if (LITTLE_ENDIAN) {
    if (format === "float32") return new Float32Array(buf);
    const q = new Int16Array(buf), y = new Float32Array(q.length);
    for (let i = 0; i < q.length; i++) y[i] = q[i] / 32768;
    return y;
  }
  const view = new DataView(buf);
  if (format === "float32") {
    const y = new Float32Array(buf.byteLength / 4);
    for (let i = 0; i < y.length; i++) y[i] = view.getFloat32(4 * i, true);
    return y;
  }
  const y = new Float32Array(buf.byteLength / 2);
  for (let i = 0; i < y.length; i++) y[i] = view.getInt16(2 * i, true) / 32768;
  return y;
}
