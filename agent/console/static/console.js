// The console's one script (served from /ui/static/; the CSP admits no inline script).
// It only adds to pages that work without it: reveal a veiled preview, follow a running scan.
"use strict";

function setUpPreviews() {
  for (const button of document.querySelectorAll("button[data-reveal]")) {
    const image = document.getElementById(button.dataset.reveal);
    if (!image) continue;
    button.addEventListener("click", () => {
      const veiled = image.classList.toggle("veiled");
      button.setAttribute("aria-pressed", veiled ? "false" : "true");
      button.textContent = veiled ? "Reveal preview" : "Veil preview";
    });
  }
  for (const holder of document.querySelectorAll("[data-preview-src]")) {
    // Fetched only when the page is open (never stored): an <img> loads it on demand.
    const image = holder.querySelector("img");
    const status = holder.querySelector(".status");
    if (!image) continue;
    image.addEventListener("load", () => { if (status) status.textContent = ""; image.hidden = false; });
    image.addEventListener("error", () => {
      if (status) status.textContent = "The preview could not be fetched with verified retrieval (see the agent's log, or try again).";
    });
    image.src = holder.dataset.previewSrc;
  }
}

function followScan() {
  const box = document.querySelector("[data-progress-url]");
  if (!box) return;
  const url = box.dataset.progressUrl;
  const tick = async () => {
    let state;
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!answer.ok) { setTimeout(tick, 2000); return; }
      state = await answer.json();
    } catch (e) {
      setTimeout(tick, 2000);
      return;
    }
    for (const key of ["status", "items", "verified", "errors", "findings"]) {
      const cell = box.querySelector(`[data-field="${key}"]`);
      if (cell) cell.textContent = String(state[key]);
    }
    if (state.finished) { window.location.reload(); return; }
    setTimeout(tick, 1000);
  };
  setTimeout(tick, 500);
}

document.addEventListener("DOMContentLoaded", () => { setUpPreviews(); followScan(); });
