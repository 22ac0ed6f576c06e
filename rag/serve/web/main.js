// Tabs and start-up.
"use strict";

function showTab(name) {
  for (const b of document.querySelectorAll("[data-tab]")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "tab-" + name;
  if (name === "library") library.refresh().catch((err) => status("Library: " + err.message));
  const focus = { ask: "question", search: "query", library: "ingest-path" }[name];
  if (focus) document.getElementById(focus).focus();
}

function status(text) { document.getElementById("status").textContent = text; }

document.addEventListener("DOMContentLoaded", async () => {
  for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
  sourceView.init();
  ask.init();
  search.init();
  library.init();
  try {
    const health = await api.json("GET", "/health");
    status(health.index.files + " files · " + health.index.chunks + " chunks");
  } catch (err) { status("Server: " + err.message); }
  document.getElementById("question").focus();
});
