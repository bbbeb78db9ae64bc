// rtsep browser client: streaming linear-interpolation resampler for interleaved
// stereo, used only when the AudioContext runs at a rate the server does not take
// (outside 8–96 kHz) or when the page is asked for another rate (?rate=16000).

export class Resampler {
  /** @param {number} from Input rate (Hz). @param {number} to Output rate (Hz). */
  constructor(from, to) {
    this.step = from / to;   // input samples per output sample
    this.pos = 0;            // position of the next output sample, in input samples from `prev`
    this.prev = [0, 0];      // the last input frame of the previous call
  }

  /** @param {Float32Array} x Interleaved stereo. @returns {Float32Array} Interleaved stereo. */
  process(x) {
    const n = x.length / 2;
    const out = [];
    // Frame j of the stream seen here: j = 0 is the previous call's last frame, j ≥ 1 is x's frame j - 1.
    const s = (j, c) => (j === 0 ? this.prev[c] : x[2 * (j - 1) + c]);
    while (this.pos < n) {
      const i = Math.floor(this.pos), f = this.pos - i;
      for (let c = 0; c < 2; c++) out.push(s(i, c) + f * (s(i + 1, c) - s(i, c)));
      this.pos += this.step;
    }
    this.pos -= n;
    if (n) this.prev = [x[2 * n - 2], x[2 * n - 1]];
    return Float32Array.from(out);
  }
}
