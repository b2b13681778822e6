// Photo mode: upload or drop a photo -> the photo with boxes, and a table of faces.
import { $, analyze, colour, drawFaces, percent, state } from "./common.js";

function facesTable(faces) {
  const body = $("faces-table").tBodies[0];
  body.replaceChildren();
  faces.forEach((face, i) => {
    const row = body.insertRow();
    row.className = "face-row";
    row.dataset.label = face.label;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour(face.label);
    row.insertCell().append(swatch, ` ${i + 1}`);
    row.insertCell().textContent = `${face.label} ${percent(face.score)}` +
      (face.assumed ? " (assumed: no face detected, the whole image taken as one face)" : "");
    row.insertCell().append(probabilityBars(face.scores));
  });
}

function probabilityBars(scores) {
  const list = document.createElement("div");
  list.className = "bars";
  const labels = state.labels.length ? state.labels : Object.keys(scores);
  for (const label of labels) {
    const item = document.createElement("div");
    item.className = "bar";
    const name = document.createElement("span");
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = percent(scores[label] || 0);
    fill.style.background = colour(label);
    track.append(fill);
    const value = document.createElement("span");
    value.textContent = percent(scores[label] || 0);
    item.append(name, track, value);
    list.append(item);
  }
  return list;
}

function clearResult() {
  // Nothing of an earlier photo may stay next to a new one, or after a failed upload.
  state.photo = null;
  $("photo-result").hidden = true;
  $("photo-result").dataset.faces = "0";
  delete $("photo-result").dataset.drawnBy;
  $("faces-table").tBodies[0].replaceChildren();
  $("photo-caption").textContent = "";
  const canvas = $("photo-canvas");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  [canvas.width, canvas.height] = [0, 0];
}

let latest = 0;  // counts uploads: only the answer to the last one is shown

async function showPhoto(file) {
  const upload = ++latest;
  const status = $("photo-status");
  clearResult();
  status.textContent = `Analysing ${file.name}…`;
  status.classList.remove("error");
  let result;
  try {
    await state.ready;
    result = await (await analyze(file)).json();
  } catch (error) {
    if (upload !== latest) return;  // another photo was chosen meanwhile
    clearResult();
    status.textContent = `Could not analyse ${file.name}: ${error.message}`;
    status.classList.add("error");
    return;
  }
  if (upload !== latest) return;
  if (!state.labels.length) state.labels = result.labels;
  const own = await browserBitmap(file, result.image);
  const bitmap = own || await serverBitmap(file);
  if (upload === latest) showResult(file, result, bitmap, own !== null);
}

// The photo as this browser decodes it, or null where that is not what the server analysed:
// a format the browser cannot read (Chromium: TIFF, PNM), a WebP with an EXIF orientation
// (the server applies it, Chromium does not), or any other difference in size.
async function browserBitmap(file, image) {
  if (await webpWithExif(file)) return null;
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    if (bitmap.width === image.width && bitmap.height === image.height) return bitmap;
  } catch (_) {
    // not an image this browser decodes
  }
  return null;
}

// A WebP's extended header (VP8X) flags an EXIF chunk with bit 3 of its byte 20.
async function webpWithExif(file) {
  const head = new Uint8Array(await file.slice(0, 21).arrayBuffer());
  const text = String.fromCharCode(...head.subarray(0, 16));
  return head.length === 21 && text.startsWith("RIFF") && text.endsWith("WEBPVP8X") &&
    (head[20] & 0x08) !== 0;
}

// The server's own drawing of the photo, boxes and labels included; null if it fails.
async function serverBitmap(file) {
  try {
    return await createImageBitmap(await (await analyze(file, "?annotate=true&format=jpeg")).blob());
  } catch (_) {
    return null;
  }
}

// bitmap: the photo (drawn here: drawHere), or the server's drawing of it, or null.
function showResult(file, result, bitmap, drawHere) {
  const canvas = $("photo-canvas");
  const shown = $("photo-result");
  shown.hidden = false;  // shown first: label sizes depend on the shown size
  if (bitmap) {
    [canvas.width, canvas.height] = [bitmap.width, bitmap.height];
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    if (drawHere) drawFaces(ctx, result.faces, 1);  // the server's pixels: the same size
  }
  shown.dataset.drawnBy = !bitmap ? "nobody" : drawHere ? "page" : "server";
  facesTable(result.faces);
  state.photo = file;
  const n = result.faces.length;
  shown.dataset.faces = String(n);
  const format = result.image.format.toUpperCase();
  const note = drawHere ? "" : bitmap
    ? `. Drawn by the server: this browser does not show this ${format} file as the server reads it`
    : `. This browser cannot show this ${format} file`;
  $("photo-caption").textContent = `${n} face${n === 1 ? "" : "s"} in ` +
    `${result.image.width}×${result.image.height} pixels, ${Math.round(result.timings_ms.total)} ms` +
    note;
  $("photo-status").textContent = n ? "" : "No face found." + (state.minFace
    ? ` Faces should be at least ${state.minFace} pixels wide and tall.` : "");
}

async function downloadAnnotated() {
  if (!state.photo) return;
  try {
    const blob = await (await analyze(state.photo, "?annotate=true&format=jpeg")).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = state.photo.name.replace(/\.[^.]*$/, "") + "-emotiscope.jpg";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    $("photo-status").textContent = `Download failed: ${error.message}`;
  }
}

export function setUpPhoto() {
  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => e.target.files[0] && showPhoto(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) showPhoto(file);
  });
  $("download").addEventListener("click", downloadAnnotated);
}
