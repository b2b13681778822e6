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
  try {
    await state.ready;
    const result = await (await analyze(file)).json();
    if (upload !== latest) return;  // another photo was chosen meanwhile
    if (!state.labels.length) state.labels = result.labels;
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    if (upload !== latest) return;
    const canvas = $("photo-canvas");
    $("photo-result").hidden = false;  // shown first: label sizes depend on the shown size
    [canvas.width, canvas.height] = [bitmap.width, bitmap.height];
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    drawFaces(ctx, result.faces, bitmap.width / result.image.width);
    facesTable(result.faces);
    state.photo = file;
    const n = result.faces.length;
    $("photo-result").dataset.faces = String(n);
    $("photo-caption").textContent = `${n} face${n === 1 ? "" : "s"} in ` +
      `${result.image.width}×${result.image.height} pixels, ${Math.round(result.timings_ms.total)} ms`;
    status.textContent = n ? "" : "No face found. Faces should be at least 20 pixels tall.";
  } catch (error) {
    if (upload !== latest) return;
    clearResult();
    status.textContent = `Could not analyse ${file.name}: ${error.message}`;
    status.classList.add("error");
  }
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
