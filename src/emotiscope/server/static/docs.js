// Renders /openapi.json as plain HTML, so the API docs work offline (no CDN).
"use strict";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function operation(path, method, op) {
  const section = el("section", undefined, "endpoint");
  section.append(el("h2", `${method.toUpperCase()} ${path}`));
  if (op.description || op.summary) section.append(el("p", op.description || op.summary));
  const params = op.parameters || [];
  if (params.length) {
    const table = el("table");
    const head = table.createTHead().insertRow();
    for (const name of ["parameter", "in", "meaning"]) head.append(el("th", name));
    const body = table.createTBody();
    for (const p of params) {
      const row = body.insertRow();
      row.insertCell().append(el("code", p.name));
      row.insertCell().textContent = p.in;
      const def = p.schema && p.schema.default !== undefined ? ` (default ${p.schema.default})` : "";
      row.insertCell().textContent = (p.description || "") + def;
    }
    section.append(table);
  }
  if (op.requestBody) {
    const types = Object.keys(op.requestBody.content || {}).join(", ");
    section.append(el("p", `Body: ${types}`, "muted"));
  }
  const codes = Object.entries(op.responses || {})
    .map(([code, r]) => `${code} ${r.description || ""}`.trim());
  section.append(el("p", `Responses: ${codes.join(" · ")}`, "muted"));
  return section;
}

async function render() {
  const main = document.getElementById("endpoints");
  try {
    const spec = await (await fetch("/openapi.json")).json();
    main.replaceChildren();
    for (const [path, methods] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(methods)) main.append(operation(path, method, op));
    }
  } catch (error) {
    main.textContent = `Could not load /openapi.json: ${error.message}`;
  }
}

// The examples name the default address; show the one this page was served from.
function examplesHere() {
  const examples = document.getElementById("examples");
  examples.textContent = examples.textContent.replaceAll("http://127.0.0.1:8000", location.origin);
}

document.addEventListener("DOMContentLoaded", () => {
  examplesHere();
  render();
});
