// rtsep browser client: the audio thread. One AudioWorkletProcessor that
//  - captures both microphones and posts them to the page every `captureFrames` frames,
//    tagged with the audio clock (frame index) of their first sample;
//  - plays the separated answers from a jitter buffer, and measures for each answer the
//    frames from the capture of its first sample to the moment it is played.
// Capture and playback run on the same clock, so the buffer only grows by bursts (a
// slow answer followed by a catch-up): when it has held more than the target plus
// one block for a whole half second, the excess is dropped (and counted), so the
// delay returns to the target instead of staying as high as the worst burst.
// Messages from the page: {type: "play", data: Float32Array [voice, background] interleaved,
// frame: capture frame of its first sample}, {type: "mode", mode: "voice"|"background"|"both"|"off"},
// {type: "target", frames}, {type: "reset"}.

class RtsepIO extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.captureFrames = o.captureFrames || 256;
    this.target = o.targetFrames || 1024;      // jitter buffer fill before playing starts again
    this.maxFill = o.maxFrames || 16384;       // beyond this, the oldest audio is dropped
    this.mode = o.mode || "voice";
    this.cap = new Float32Array(this.captureFrames * 2);
    this.capFill = 0;
    this.capStart = 0;
    this.queue = [];        // answers: {data, frame, pos}
    this.buffered = 0;      // frames waiting in the queue
    this.priming = true;
    this.underruns = 0;     // quanta that needed audio the buffer did not have (late answers)
    this.droppedFrames = 0; // frames thrown away because the buffer overflowed
    this.latencies = [];    // capture → play, frames, since the last report
    this.minFill = Infinity; // lowest fill during the current half second
    this.windowStart = 0;
    this.lastReport = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    if (m.type === "play") {
      this.queue.push({data: m.data, frame: m.frame, pos: 0});
      this.buffered += m.data.length / 2;
      while (this.buffered > this.maxFill && this.queue.length > 1) {
        const old = this.queue.shift();
        const n = old.data.length / 2 - old.pos;
        this.buffered -= n;
        this.droppedFrames += n;
      }
    } else if (m.type === "mode") {
      this.mode = m.mode;
    } else if (m.type === "target") {
      this.target = m.frames;
    } else if (m.type === "reset") {
      this.queue = [];
      this.buffered = 0;
      this.priming = true;
    }
  }

  capture(input, n) {
    const a = input[0], b = input.length > 1 ? input[1] : input[0];
    for (let i = 0; i < n; i++) {
      if (this.capFill === 0) this.capStart = currentFrame + i;
      const k = 2 * this.capFill;
      this.cap[k] = a ? a[i] : 0;
      this.cap[k + 1] = b ? b[i] : 0;
      if (++this.capFill === this.captureFrames) {
        this.port.postMessage({type: "capture", frame: this.capStart, data: this.cap,
                               channels: input.length}, [this.cap.buffer]);
        this.cap = new Float32Array(this.captureFrames * 2);
        this.capFill = 0;
      }
    }
  }

  play(out, n) {
    const left = out[0], right = out.length > 1 ? out[1] : null;
    if (this.priming && this.buffered >= this.target) this.priming = false;
    let i = 0;
    while (!this.priming && i < n && this.queue.length) {
      const q = this.queue[0];
      if (q.pos === 0) this.latencies.push(currentFrame + i - q.frame);
      const take = Math.min(n - i, q.data.length / 2 - q.pos);
      for (let j = 0; j < take; j++) {
        const v = q.data[2 * (q.pos + j)], g = q.data[2 * (q.pos + j) + 1];
        let l = 0, r = 0;
        if (this.mode === "voice") { l = r = v; }
        else if (this.mode === "background") { l = r = g; }
        else if (this.mode === "both") { l = v; r = g; }
        left[i + j] = l;
        if (right) right[i + j] = r;
      }
      q.pos += take;
      i += take;
      this.buffered -= take;
      if (q.pos * 2 >= q.data.length) this.queue.shift();
    }
    if (i < n) {  // not enough audio: silence, and wait for the buffer to fill again
      if (!this.priming) this.underruns++;
      this.priming = true;
      for (; i < n; i++) { left[i] = 0; if (right) right[i] = 0; }
    }
  }

  trim() {
    if (!this.priming) this.minFill = Math.min(this.minFill, this.buffered);
    if (currentFrame - this.windowStart < sampleRate / 2) return;
    let excess = this.priming ? 0 : this.minFill - this.target;
    if (excess > this.captureFrames) {
      while (excess > 0 && this.queue.length > 1) {
        const q = this.queue[0];
        const take = Math.min(excess, q.data.length / 2 - q.pos);
        q.pos += take;
        excess -= take;
        this.buffered -= take;
        this.droppedFrames += take;
        if (q.pos * 2 >= q.data.length) this.queue.shift();
      }
    }
    this.windowStart = currentFrame;
    this.minFill = Infinity;
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const n = out[0].length;
    if (inputs[0] && inputs[0].length) this.capture(inputs[0], n);
    this.play(out, n);
    this.trim();
    if (currentFrame - this.lastReport >= sampleRate / 4) {
      this.lastReport = currentFrame;
      this.port.postMessage({type: "report", buffered: this.buffered, underruns: this.underruns,
                             droppedFrames: this.droppedFrames, latencies: this.latencies, priming: this.priming});
      this.latencies = [];
    }
    return true;
  }
}

registerProcessor("rtsep-io", RtsepIO);
