// Search: ranked passages with their scores, filtered as --where filters (type, source glob).
"use strict";

const search = (() => {
  async function submit() {
    const query = document.getElementById("query").value.trim();
    if (!query) return;
    const list = document.getElementById("hits");
    const where = [];
    const type = document.getElementById("search-type").value.trim();
    const source = document.getElementById("search-source").value.trim();
    if (type) where.push("type=" + type);
    if (source) where.push("source=" + source);
    const body = { query, k: Number(document.getElementById("search-k").value) || 8 };
    const mode = document.getElementById("search-mode").value;
    if (mode) body.mode = mode;
    if (where.length) body.where = where;
    list.replaceChildren(el("li", { class: "hint", text: "Searching…" }));
    try {
      const result = await api.json("POST", "/v1/search", body);
      list.replaceChildren(...result.hits.map((h) => el("li", {}, el("span", { class: "rank", text: "#" + h.rank + " " }), hitButton(h))));
      if (!result.hits.length) list.replaceChildren(el("li", { class: "hint", text: "No passage matched." }));
    } catch (err) {
      list.replaceChildren(el("li", { class: "error", text: "Failed: " + err.message }));
    }
  }

  function init() {
    document.getElementById("search-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  }
  return { init };
})();
