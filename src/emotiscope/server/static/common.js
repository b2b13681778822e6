// Shared by the page's scripts: model state, the API call, and drawing boxes and labels.
// Boxes from the API are in pixels of the image that was sent, top-left origin.

export const $ = (id) => document.getElementById(id);
// One colour per label: the model card's (the same as the server's annotated images).
// minFace: the smallest face side the server looks for, in pixels (null: not known).
export const state = { labels: [], colours: {}, minFace: null, photo: null, ready: null };

export function colour(label) {
  return state.colours[label] || "#888888";
}

// Black or white, whichever reads better on `hex`.
export function ink(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#000" : "#fff";
}

export function percent(p) { return `${Math.round(p * 100)}%`; }

export async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error ? body.error.message : `HTTP ${response.status}`;
  } catch (_) {
    return `HTTP ${response.status}`;
  }
}

export async function analyze(blob, query = "") {
  const response = await fetch(`/v1/analyze${query}`, {
    method: "POST", body: blob,
    headers: { "Content-Type": blob.type || "application/octet-stream" },
  });
  if (!response.ok) {
    const error = new Error(await errorMessage(response));
    error.retryAfter = Number(response.headers.get("Retry-After")) || 0;
    throw error;
  }
  return response;
}

// Boxes and labels, scaled from the analysed image's pixels to the canvas's. Line and text
// sizes are set in CSS pixels, so labels read the same however large the canvas is shown.
export function drawFaces(ctx, faces, scale) {
  const shown = ctx.canvas.getBoundingClientRect().width;
  const perCss = shown > 0 ? ctx.canvas.width / shown : 1;   // canvas pixels per CSS pixel
  const line = Math.max(1, Math.round(2 * perCss));
  const font = Math.max(6, Math.round(14 * perCss));
  ctx.lineWidth = line;
  ctx.font = `600 ${font}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  faces.forEach((face, i) => {
    const b = face.box;
    const [x, y, w, h] = [b.x * scale, b.y * scale, b.w * scale, b.h * scale];
    ctx.strokeStyle = ctx.fillStyle = colour(face.label);
    ctx.setLineDash(face.assumed ? [4 * line, 3 * line] : []);  // assumed, not detected: dashed
    ctx.strokeRect(x, y, w, h);
    ctx.setLineDash([]);
    const text = `${i + 1} ${face.label} ${percent(face.score)}${face.assumed ? " (assumed)" : ""}`;
    const pad = Math.round(font * 0.25);
    const tw = ctx.measureText(text).width + 2 * pad;
    const ty = y - font - 2 * pad >= 0 ? y - font - 2 * pad : y + h;
    ctx.fillRect(x - line / 2, ty, tw, font + 2 * pad);
    ctx.fillStyle = ink(colour(face.label));
    ctx.fillText(text, x - line / 2 + pad, ty + pad);
  });
}
