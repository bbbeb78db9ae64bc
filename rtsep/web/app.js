// rtsep browser client: the page. Captures two microphones with an AudioWorklet,
// streams them to the server that served this page, plays the separated voice or
// background, and shows levels, latency, server load, losses and waveforms.
// State for tests and curious users: window.rtsep.

import {Stream} from "./stream.js";
import {Recorder} from "./wav.js";
import {Resampler} from "./resample.js";
import {Scope} from "./scope.js";

const $ = (id) => document.getElementById(id);
const query = new URLSearchParams(location.search);

const state = window.rtsep = {
  status: "idle", errors: [], notices: [], device: null, ctxRate: null, wireFs: null,
  sent: 0, received: 0, droppedSend: 0, droppedFrames: 0, underruns: 0,
  rttMs: [], latencyMs: null, deviceLatencyMs: null, ready: null, serverStats: null, finalStats: null,
  swapped: false, downloads: [], history: [], recording: false, monoQuanta: 0, identicalBlocks: 0, blocks: 0,
};

function fail(msg) {
  const text = String(msg);
  state.errors.push(text);
  const li = document.createElement("li");
  li.textContent = text;
  $("errors").appendChild(li);
}
window.addEventListener("error", (e) => fail(`error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => fail(`error: ${e.reason && e.reason.message || e.reason}`));

function notice(text) {
  if (!state.notices.includes(text)) state.notices.push(text);
  $("notice").textContent = state.notices.join(" ");
  $("notice").hidden = false;
}

function setStatus(text, on = false) {
  state.status = text;
  $("status").textContent = text;
  $("status").classList.toggle("on", on);
}

// ---------------------------------------------------------------- session
let ctx = null, node = null, media = null, stream = null;
let resIn = null, resOut = null, pending = null, pendingFill = 0, pendingTag = 0;
let recorder = null, recInflight = 0, recStopping = false;
const scopeIn = new Scope($("scope-in"), ["#4ea1ff", "#f0a040"]);
const scopeOut = new Scope($("scope-out"), ["#8a96a3", "#3ccf6e"]);

async function listDevices() {
  const sel = $("device"), keep = sel.value;
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  sel.replaceChildren(...devices.map((d, i) => new Option(d.label || `microphone ${i + 1}`, d.deviceId)));
  if (keep) sel.value = keep;
}

function wsUrl() {
  const u = new URL(".", location.href);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.href;
}

async function start() {
  state.notices = [];
  $("notice").hidden = true;
  setStatus("asking for the microphones…");
  const dev = $("device").value;
  media = await navigator.mediaDevices.getUserMedia({audio: {
    deviceId: dev ? {exact: dev} : undefined, channelCount: {ideal: 2},
    echoCancellation: false, noiseSuppression: false, autoGainControl: false}});
  await listDevices();
  const track = media.getAudioTracks()[0];
  const s = track.getSettings();
  $("device").value = s.deviceId || $("device").value;
  state.device = {label: track.label, channelCount: s.channelCount, sampleRate: s.sampleRate, latency: s.latency,
                  echoCancellation: s.echoCancellation, noiseSuppression: s.noiseSuppression,
                  autoGainControl: s.autoGainControl};
  if (s.channelCount === 1) {
    notice(`"${track.label}" gives only one channel: separation needs two microphones. ` +
           "Choose a stereo or two-microphone input.");
    stopCapture();
    setStatus("idle: the device is mono");
    return;
  }
  const processing = ["echoCancellation", "noiseSuppression", "autoGainControl"].filter((k) => s[k]);
  if (processing.length) notice(`The browser kept ${processing.join(", ")} on: the separation works best without.`);

  ctx = new AudioContext({latencyHint: "interactive"});
  await ctx.audioWorklet.addModule(new URL("worklet.js", import.meta.url));
  state.ctxRate = ctx.sampleRate;
  const wanted = Number(query.get("rate")) || ctx.sampleRate;
  state.wireFs = wanted >= 8000 && wanted <= 96000 ? wanted : 48000;
  resIn = state.wireFs !== ctx.sampleRate ? new Resampler(ctx.sampleRate, state.wireFs) : null;
  resOut = resIn ? new Resampler(state.wireFs, ctx.sampleRate) : null;
  const block = Number($("block").value);
  pending = new Float32Array(2 * block);
  pendingFill = 0;

  node = new AudioWorkletNode(ctx, "rtsep-io", {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2],
    channelCount: 2, channelCountMode: "max", channelInterpretation: "discrete",
    processorOptions: {captureFrames: resIn ? 128 : block, mode: $("hear").value,
                       targetFrames: jitterFrames()}});
  node.onprocessorerror = () => fail("error: the audio worklet stopped");
  node.port.onmessage = (e) => (e.data.type === "capture" ? onCapture(e.data) : onReport(e.data));
  ctx.createMediaStreamSource(media).connect(node);
  node.connect(ctx.destination);

  const config = {fs: state.wireFs, channels: 2, engine: $("engine").value, format: $("format").value,
                  block, stats_interval_s: 1};
  if ($("token").value) config.token = $("token").value;
  setStatus("connecting… (a server's first stream compiles its kernels: up to a minute)");
  stream = new Stream(wsUrl(), config, {ready: onReady, answer: onAnswer, stats: onStats,
                                         swapped: onSwapped, closed: onClosed});
  $("start").textContent = "Stop";
  $("start").classList.add("stop");
}

function jitterFrames() {
  return Math.round(Math.max(0, Number($("jitter").value) || 0) / 1000 * (ctx ? ctx.sampleRate : 48000)) || 1;
}

function onReady(m) {
  state.ready = m;
  setStatus(`separating (${m.engine}, ${m.fs} Hz)`, true);
  $("swap").disabled = false;
  $("record").disabled = false;
  $("wire").textContent = `${m.fs} Hz ${m.format}, block ${m.block}` +
    (resIn ? ` (resampled from ${ctx.sampleRate} Hz)` : "") +
    (m.latency_samples ? `, engine delay ${(m.latency_samples / m.fs * 1000).toFixed(0)} ms` : "");
}

function onCapture(m) {
  if (!ctx) return;
  state.blocks++;
  if (m.channels < 2) {
    state.monoQuanta++;
    notice("The input delivers only one channel: separation needs two microphones (nothing is sent).");
    return;
  }
  const x = m.data;
  meters(x);
  scopeIn.push(x, ctx.sampleRate, [0, 1]);
  if (!stream || !stream.open || state.status === "stopping") return;
  const y = resIn ? resIn.process(x) : x;
  const ratio = ctx.sampleRate / state.wireFs;
  for (let i = 0; i < y.length; i += 2) {
    if (pendingFill === 0) pendingTag = m.frame + Math.round((i / 2) * ratio);
    pending[2 * pendingFill] = y[i];
    pending[2 * pendingFill + 1] = y[i + 1];
    if (++pendingFill * 2 === pending.length) {
      sendBlock(pending, pendingTag);
      pending = new Float32Array(pending.length);
      pendingFill = 0;
    }
  }
}

function sendBlock(x, frame) {
  const rec = recorder !== null && !recStopping;
  if (!stream.send(x, {frame, rec})) { state.droppedSend = stream.dropped; return; }
  state.sent = stream.sent;
  if (rec) { recorder.input.push(x); recInflight++; }
}

function onAnswer(y, tag, rtt) {
  state.received = stream.received;
  state.rttMs.push(rtt);
  if (state.rttMs.length > 400) state.rttMs.splice(0, state.rttMs.length - 400);
  if (tag && tag.rec && recorder) {
    recorder.output.push(y);
    if (--recInflight === 0 && recStopping) finishRecording();
  }
  scopeOut.push(y, state.wireFs, [1, 0]);
  if (!node) return;  // answers after Stop: counted and recorded, not played
  const z = resOut ? resOut.process(y) : y;
  node.port.postMessage({type: "play", data: z, frame: tag ? tag.frame : 0});
}

const latencies = [];
function onReport(r) {
  if (!ctx) return;
  state.underruns = r.underruns;
  state.droppedFrames = r.droppedFrames;
  if (r.latencies.length) {  // median over the last ~400 answers played
    latencies.push(...r.latencies.map((f) => f / ctx.sampleRate * 1000));
    if (latencies.length > 400) latencies.splice(0, latencies.length - 400);
    state.latencyMs = median(latencies);
  }
  state.history.push([Math.round(performance.now()), state.latencyMs, r.buffered, r.underruns, r.droppedFrames]);
  if (state.history.length > 240) state.history.shift();
}

function onStats(m) {
  if (m.final) state.finalStats = m; else state.serverStats = m;
  state.swapped = !!m.swapped;
  showVoice(m);
  $("rtf").textContent = `${(m.final ? m.rtf : m.rtf_recent).toFixed(4)}` +
    ` (${m.final ? "whole stream" : "last second"}; 1 = as slow as real time)`;
}

function onSwapped(m) {
  state.swapped = m.swapped;
  showVoice(state.serverStats || {});
}

function showVoice(m) {
  const label = typeof m.voice === "number" ? m.voice : null;
  const out = label === null ? "?" : (state.swapped ? 1 - label : label) + 1;
  $("voiceis").textContent = `Voice: separator output ${out} — ` +
    (state.swapped ? "swapped by you" : "chosen automatically (the more speech-like one)");
}

function onClosed(code, reason, error) {
  if (code !== 1000) {
    const why = error || `the server closed the stream (code ${code}${reason ? ": " + reason : ""})`;
    fail(why);
  }
  if (recorder && recInflight > 0) finishRecording();
  stopCapture();
  setStatus(code === 1000 ? "stopped" : "stopped: " + (error || `closed with code ${code}`));
}

function stop() {
  if (recorder && !recStopping) toggleRecord();
  if (stream && stream.open) {
    setStatus("stopping");
    stream.eof();
  } else {
    stopCapture();
    setStatus("stopped");
  }
}

function stopCapture() {
  if (node) node.port.onmessage = null;  // messages already queued by the worklet are not wanted any more
  if (media) media.getTracks().forEach((t) => t.stop());
  if (ctx) ctx.close();
  media = null; ctx = null; node = null; stream = null;
  $("start").textContent = "Start";
  $("start").classList.remove("stop");
  $("swap").disabled = true;
  $("record").disabled = true;
}

// ---------------------------------------------------------------- recording
function toggleRecord() {
  if (!recorder) {
    recorder = new Recorder(state.wireFs);
    recInflight = 0;
    recStopping = false;
    state.recording = true;
    $("record").textContent = "Stop recording";
    $("record").classList.add("on");
  } else if (!recStopping) {
    recStopping = true;  // no new blocks; the file ends with the answer to the last one sent
    if (recInflight === 0) finishRecording();
  }
}

function finishRecording() {
  const files = recorder.files();
  recorder = null;
  recStopping = false;
  state.recording = false;
  $("record").textContent = "Record";
  $("record").classList.remove("on");
  $("recordings").hidden = false;
  const stamp = new Date().toLocaleTimeString();
  for (const [name, blob] of Object.entries(files)) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.textContent = `${name} (${stamp}, ${(blob.size / 1024).toFixed(0)} KiB)`;
    const li = document.createElement("li");
    li.appendChild(a);
    $("files").appendChild(li);
    a.click();
    state.downloads.push(name);
  }
}

// ---------------------------------------------------------------- display
const level = [-80, -80];
function meters(x) {
  let s0 = 0, s1 = 0, same = true;
  for (let i = 0; i < x.length; i += 2) {
    s0 += x[i] * x[i];
    s1 += x[i + 1] * x[i + 1];
    if (x[i] !== x[i + 1]) same = false;
  }
  if (same && s0 > 0) {
    if (++state.identicalBlocks > 50) notice("Both channels carry the same signal: the device copies one microphone " +
                                             "to both sides, so there is nothing to separate.");
  } else state.identicalBlocks = 0;
  const n = x.length / 2;
  [s0, s1].forEach((s, c) => {
    const db = 10 * Math.log10(s / n + 1e-10);
    level[c] = Math.max(db, level[c] - 1.5);  // fast attack, slow release
  });
}

function median(a) {
  const s = [...a].sort((p, q) => p - q);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

function pct(a, q) {
  const s = [...a].sort((p, r) => p - r);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
}

let lastDraw = 0;
function render(now) {
  requestAnimationFrame(render);
  if (now - lastDraw < 40) return;  // 25 pictures a second are plenty for meters and scopes
  lastDraw = now;
  for (const c of [0, 1]) {
    $(`lvl${c + 1}`).value = Math.max(-80, level[c]);
    $(`db${c + 1}`).textContent = ctx ? `${level[c].toFixed(0)} dBFS` : "–";
  }
  if (ctx) {
    const recent = state.rttMs.slice(-100);
    if (recent.length) $("rtt").textContent = `${median(recent).toFixed(1)} ms median, ${pct(recent, 0.95).toFixed(1)} ms p95`;
    const dev = ((ctx.baseLatency || 0) + (ctx.outputLatency || 0) + ((state.device && state.device.latency) || 0)) * 1000;
    state.deviceLatencyMs = dev;
    if (state.latencyMs !== null) {
      const algo = state.ready ? state.ready.latency_samples / state.ready.fs * 1000 : 0;
      $("e2e").textContent = `${(state.latencyMs + algo).toFixed(0)} ms in the page` +
        ` (block + network + jitter buffer${algo ? " + engine" : ""}) + ${dev.toFixed(0)} ms device ≈ ` +
        `${(state.latencyMs + algo + dev).toFixed(0)} ms`;
    }
    const serverLate = state.serverStats ? state.serverStats.late_frames : 0;
    $("late").textContent = `playback underruns: ${state.underruns}; frames late at the server: ${serverLate}`;
    $("dropped").textContent = `frames not sent (server behind): ${state.droppedSend}; ` +
      `samples dropped (buffer full): ${state.droppedFrames}`;
    $("samples").textContent = `${state.sent} / ${state.received}`;
    $("dev").textContent = state.device ? `${state.device.label}: ${state.device.channelCount ?? "?"} ch, ` +
      `${ctx.sampleRate} Hz` : "–";
  }
  scopeIn.draw();
  scopeOut.draw();
}

// ---------------------------------------------------------------- controls
$("start").addEventListener("click", () => {
  if (ctx) stop();
  else start().catch((e) => { fail(`cannot start: ${e.name === "NotAllowedError" ? "microphone access denied" : e.message}`);
                              stopCapture(); setStatus("idle"); });
});
$("controls").addEventListener("submit", (e) => e.preventDefault());
$("swap").addEventListener("click", () => stream && stream.swap());
$("record").addEventListener("click", toggleRecord);
$("hear").addEventListener("change", () => node && node.port.postMessage({type: "mode", mode: $("hear").value}));
$("jitter").addEventListener("change", () => node && node.port.postMessage({type: "target", frames: jitterFrames()}));
if (navigator.mediaDevices) listDevices().catch(() => {});
else fail("this page needs microphone access, which browsers give only to https:// pages and http://localhost");
requestAnimationFrame(render);
