// rtsep browser client: recording. Blocks of audio are kept as they are sent and
// answered, and written as 16-bit PCM WAV files when the recording stops.

export class Recorder {
  /** @param {number} fs Sample rate of the recorded stream (Hz). */
  constructor(fs) {
    this.fs = fs;
    this.input = [];     // Float32Array [mic1, mic2] interleaved, as sent
    this.output = [];    // Float32Array [voice, background] interleaved, as answered
  }

  samples(list) { return list.reduce((s, b) => s + b.length / 2, 0); }

  /** The three files: input (2 channels), voice and background (1 channel each). */
  files() {
    return {
      "rtsep-input.wav": wav(this.input, [0, 1], this.fs),
      "rtsep-voice.wav": wav(this.output, [0], this.fs),
      "rtsep-background.wav": wav(this.output, [1], this.fs),
    };
  }
}

/**
 * A 16-bit PCM WAV file of some channels of interleaved stereo blocks.
 * @param {Float32Array[]} blocks Interleaved 2-channel blocks.
 * @param {number[]} pick Channels to keep (0, 1).
 * @param {number} fs Sample rate (Hz).
 * @returns {Blob}
 */
export function wav(blocks, pick, fs) {
  const frames = blocks.reduce((s, b) => s + b.length / 2, 0);
  const ch = pick.length;
  const bytes = frames * ch * 2;
  const v = new DataView(new ArrayBuffer(44 + bytes));
  const text = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  text(0, "RIFF"); v.setUint32(4, 36 + bytes, true); text(8, "WAVE");
  text(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, ch, true);
  v.setUint32(24, Math.round(fs), true); v.setUint32(28, Math.round(fs) * ch * 2, true);
  v.setUint16(32, ch * 2, true); v.setUint16(34, 16, true);
  text(36, "data"); v.setUint32(40, bytes, true);
  let o = 44;
  for (const b of blocks) {
    for (let i = 0; i < b.length; i += 2) {
      for (const c of pick) {
        const s = Math.round(b[i + c] * 32768);
        v.setInt16(o, s > 32767 ? 32767 : s < -32768 ? -32768 : s, true);
        o += 2;
      }
    }
  }
  return new Blob([v.buffer], {type: "audio/wav"});
}
