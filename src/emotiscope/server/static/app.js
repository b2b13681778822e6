// emotiscope page: tabs and the model card; photo.js and live.js do the work. No libraries.
import { $, errorMessage, state } from "./common.js";
import { drawChart, legend, resumeLive, setUpLive } from "./live.js";
import { setUpPhoto } from "./photo.js";

function showTab(name) {
  for (const tab of ["photo", "live"]) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`panel-${tab}`).hidden = tab !== name;
  }
  if (name === "live") resumeLive();
}

async function loadModel() {
  try {
    const response = await fetch("/v1/model");
    if (!response.ok) throw new Error(await errorMessage(response));
    const card = await response.json();
    state.labels = card.labels;
    state.colours = card.colours || {};
    state.minFace = card.min_face ?? null;
    $("model-info").textContent = `Model ${card.name} (${card.arch || "unknown architecture"}), ` +
      `labels: ${card.labels.join(", ")}.`;
    legend();
    drawChart();
  } catch (error) {
    $("model-info").textContent = `Model card unavailable: ${error.message}`;
  }
}

// Module scripts run after the document is parsed: the elements exist.
function start() {
  $("tab-photo").addEventListener("click", () => showTab("photo"));
  $("tab-live").addEventListener("click", () => showTab("live"));
  setUpPhoto();
  setUpLive();
  state.ready = loadModel();
}

start();
