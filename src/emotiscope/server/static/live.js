// Live mode: camera frames, downscaled, sent at a steady rate; boxes drawn over the video;
// a stacked chart of the emotion mix; pause and stop.
import { $, analyze, colour, drawFaces, state } from "./common.js";

const SEND_SIDE = 480;       // frames are downscaled to at most this many pixels on a side
const HISTORY = 150;         // chart samples kept (30 s at 5 frames per second)
// busy: a frame is being grabbed or analysed; camera: counts camera starts, so that a frame
// sent before the camera was turned off and on again is recognised when it returns.
const live = { stream: null, paused: false, timer: 0, frames: 0, history: [], latency: 0,
               busy: false, camera: 0 };

function liveStatus(text, isError = false) {
  const el = $("live-status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    liveStatus("This browser gives no camera here: open the page on localhost or over https.", true);
    return;
  }
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" }, audio: false });
  } catch (error) {
    liveStatus(`No camera: ${error.message || error.name}. Allow camera access and retry.`, true);
    return;
  }
  const video = $("video");
  video.srcObject = live.stream;
  await video.play();
  Object.assign(live, { paused: false, frames: 0, history: [], camera: live.camera + 1 });
  $("cam-start").disabled = true;
  $("cam-pause").disabled = $("cam-stop").disabled = false;
  $("cam-pause").textContent = "Pause";
  liveStatus("Camera on.");
  schedule(0);
}

function stopCamera() {
  clearTimeout(live.timer);
  if (live.stream) live.stream.getTracks().forEach((track) => track.stop());
  live.stream = null;
  $("video").srcObject = null;
  const overlay = $("overlay");
  overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  overlay.dataset.facesDrawn = "0";
  $("cam-start").disabled = false;
  $("cam-pause").disabled = $("cam-stop").disabled = true;
  liveStatus("Camera off.");
}

function togglePause() {
  live.paused = !live.paused;
  const video = $("video");
  $("cam-pause").textContent = live.paused ? "Resume" : "Pause";
  if (live.paused) {
    video.pause();
    liveStatus("Paused.");
  } else {
    video.play();
    schedule(0);
  }
}

// At most one frame in flight; the next is due one interval after the previous was sent.
// While a frame is in flight nothing is scheduled: its answer schedules the next one.
function schedule(delay) {
  clearTimeout(live.timer);
  if (!live.busy) live.timer = setTimeout(sendFrame, delay);
}

function grabFrame(video) {
  const scale = Math.min(1, SEND_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
}

async function sendFrame() {
  const video = $("video");
  if (!live.stream || live.paused || live.busy) return;
  const interval = 1000 / Number($("cam-rate").value);
  const started = performance.now();
  if (!video.videoWidth || document.hidden || $("panel-live").hidden) {
    schedule(interval);
    return;
  }
  const camera = live.camera;
  let result, failure;
  live.busy = true;
  try {
    result = await (await analyze(await grabFrame(video))).json();
  } catch (error) {
    failure = error;
  } finally {
    live.busy = false;
  }
  if (!live.stream || live.paused) return;  // off or paused: Resume or Turn on sends again
  if (camera !== live.camera) {             // a frame of a camera since turned off: dropped
    schedule(0);
    return;
  }
  if (failure) {
    liveStatus(`Frame not analysed: ${failure.message}`, true);
    schedule(Math.max(interval, (failure.retryAfter || 1) * 1000));
    return;
  }
  showFrame(result, started);
  schedule(Math.max(0, interval - (performance.now() - started)));
}

function showFrame(result, started) {
  drawOverlay(result);
  record(result.faces);
  live.frames += 1;
  live.latency = 0.8 * live.latency + 0.2 * (performance.now() - started);
  $("live-status").dataset.frames = String(live.frames);
  const n = result.faces.length;
  liveStatus(`${n} face${n === 1 ? "" : "s"} · ${Math.round(live.latency)} ms per frame`);
}

// The overlay has as many pixels as it is shown with, so labels stay sharp at any size.
function drawOverlay(result) {
  const overlay = $("overlay");
  const shown = overlay.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  [overlay.width, overlay.height] = [Math.round(shown.width * dpr), Math.round(shown.height * dpr)];
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  drawFaces(ctx, result.faces, overlay.width / result.image.width);
  overlay.dataset.facesDrawn = String(result.faces.length);
}

// The chart shows each label's mean probability over the faces in a frame, stacked to 1.
function record(faces) {
  const mix = {};
  for (const label of state.labels) {
    mix[label] = faces.length ? faces.reduce((s, f) => s + (f.scores[label] || 0), 0) / faces.length : 0;
  }
  live.history.push(faces.length ? mix : null);
  if (live.history.length > HISTORY) live.history.shift();
  drawChart();
}

export function drawChart() {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const [w, h] = [canvas.width, canvas.height];
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#f3f4f6";
  ctx.fillRect(0, 0, w, h);
  const step = w / (HISTORY - 1);
  const x0 = w - (live.history.length - 1) * step;
  live.history.forEach((mix, i) => {
    if (!mix) return;                       // no face in that frame: a gap
    let bottom = h;
    for (const label of state.labels) {
      const height = mix[label] * h;
      ctx.fillStyle = colour(label);
      ctx.fillRect(x0 + i * step - step / 2, bottom - height, step + 0.5, height);
      bottom -= height;
    }
  });
}

export function legend() {
  const el = $("legend");
  el.replaceChildren();
  for (const label of state.labels) {
    const item = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour(label);
    item.append(swatch, ` ${label}`);
    el.append(item);
  }
}

// Called when the camera tab is shown again.
export function resumeLive() {
  if (live.stream && !live.paused) schedule(0);
}

export function setUpLive() {
  $("cam-start").addEventListener("click", startCamera);
  $("cam-stop").addEventListener("click", stopCamera);
  $("cam-pause").addEventListener("click", togglePause);
}
