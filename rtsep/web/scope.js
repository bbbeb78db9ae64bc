// rtsep browser client: a rolling waveform on a canvas. Each column is the
// min..max of the samples of one slice (10 ms); several traces share a canvas.

export class Scope {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {string[]} colors One per trace.
   * @param {number} seconds Width of the window shown.
   */
  constructor(canvas, colors, seconds = 6) {
    this.canvas = canvas;
    this.colors = colors;
    this.columns = Math.round(seconds * 100);
    this.lo = colors.map(() => new Float32Array(this.columns));
    this.hi = colors.map(() => new Float32Array(this.columns));
    this.head = 0;
    this.acc = colors.map(() => [Infinity, -Infinity]);
    this.count = 0;
  }

  /**
   * Add interleaved stereo samples to traces.
   * @param {Float32Array} x Interleaved stereo.
   * @param {number} fs Sample rate (Hz).
   * @param {number[]} traces For each trace, which channel of x (0 or 1) it shows.
   */
  push(x, fs, traces) {
    const slice = Math.max(1, Math.round(fs / 100));
    for (let i = 0; i < x.length; i += 2) {
      for (let t = 0; t < traces.length; t++) {
        const v = x[i + traces[t]];
        const a = this.acc[t];
        if (v < a[0]) a[0] = v;
        if (v > a[1]) a[1] = v;
      }
      if (++this.count >= slice) {
        for (let t = 0; t < traces.length; t++) {
          this.lo[t][this.head] = this.acc[t][0];
          this.hi[t][this.head] = this.acc[t][1];
          this.acc[t] = [Infinity, -Infinity];
        }
        this.head = (this.head + 1) % this.columns;
        this.count = 0;
      }
    }
  }

  draw() {
    const c = this.canvas, g = c.getContext("2d");
    const w = c.width, h = c.height, mid = h / 2;
    g.fillStyle = "#10151c";
    g.fillRect(0, 0, w, h);
    g.strokeStyle = "#2a3440";
    g.beginPath(); g.moveTo(0, mid); g.lineTo(w, mid); g.stroke();
    for (let t = 0; t < this.colors.length; t++) {
      g.strokeStyle = this.colors[t];
      g.beginPath();
      for (let k = 0; k < this.columns; k++) {
        const col = (this.head + k) % this.columns;
        const x = (k / this.columns) * w;
        g.moveTo(x, mid - this.hi[t][col] * mid);
        g.lineTo(x, mid - this.lo[t][col] * mid + 0.5);
      }
      g.stroke();
    }
  }
}
