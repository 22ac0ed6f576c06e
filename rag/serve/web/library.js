// The library: what the index holds and how it was built, the files that failed and
// why, and (unless the server is read-only) ingest with live progress, re-sync, remove.
"use strict";

const library = (() => {
  let polling = null;

  async function refresh() {
    const [files, jobs] = await Promise.all([api.json("GET", "/v1/files"), api.json("GET", "/v1/ingest")]);
    build(files);
    fileRows(files, jobs.read_only);
    failures(jobs);
    document.getElementById("writes").hidden = jobs.read_only;
    const roots = jobs.allow_roots.length ? "Allowed folders: " + jobs.allow_roots.join(", ") : "No folder is allowed (start rag serve with --allow-root DIR).";
    document.getElementById("roots").textContent = roots;
    status(files.files.length + " files · " + files.chunks + " chunks");
    const running = jobs.jobs.find((j) => j.state === "queued" || j.state === "running");
    if (running && !polling) follow(running.id);
  }

  function build(files) {
    const c = files.chunking || {};
    const rows = [["Embedder", files.embedder + " (" + files.dim + " dimensions)"],
      ["Chunking", c.chunk_tokens + " tokens, overlap " + c.chunk_overlap + " (" + c.algorithm + ")"],
      ["Files", String(files.files.length)], ["Chunks", String(files.chunks)], ["Store", files.store + " at " + files.index_dir],
      ["Last ingest", files.last_ingest || "—"]];
    document.getElementById("build").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  }

  function fileRows(files, readOnly) {
    document.getElementById("files").replaceChildren(...files.files.map((f) => el("tr", { "data-testid": "library-file" },
      el("td", { class: "path", text: f.path }), el("td", { text: String(f.chunks) }), el("td", { text: String(f.pages) }),
      el("td", { text: f.ingested_at || "" }),
      el("td", {}, readOnly ? null : el("button", { type: "button", class: "remove", "data-testid": "remove",
        "aria-label": "Remove " + f.path + " from the index", text: "Remove", onclick: () => remove(f.path) })))));
  }

  function failures(jobs) {
    document.getElementById("failed").replaceChildren(...jobs.failed.map((f) => el("li", { "data-testid": "failed-file" },
      el("span", { class: "path", text: f.path }), el("span", { class: "reason", text: ": " + f.reason }))));
    if (!jobs.failed.length) document.getElementById("failed").append(el("li", { class: "hint",
      text: "No failures in the ingests of this server's run (those of rag ingest are reported by it)." }));
    const skipped = Object.entries(jobs.skipped || {});
    document.getElementById("skipped").textContent = skipped.length ? "Skipped, no loader reads them: " +
      skipped.map(([suffix, n]) => n + " × " + (suffix || "(no suffix)")).join(", ") : "";
  }

  function progress(job) {
    const box = document.getElementById("progress");
    box.hidden = false;
    const bar = document.getElementById("progress-bar");
    bar.max = Math.max(1, job.total);
    bar.value = job.done;
    let text = job.kind + " " + job.state;
    if (job.state === "running" && job.stage) text += ": " + job.stage + " " + job.done + "/" + job.total + (job.detail ? " " + job.detail : "");
    if (job.state === "done" && job.report) {
      const r = job.report;
      text += ": " + ["added", "updated", "removed", "unchanged"].filter((k) => r[k]).map((k) => r[k] + " " + k).join(", ");
      if ((r.failed || []).length) text += ", " + r.failed.length + " failed";
    }
    if (job.state === "failed") text += ": " + job.error;
    document.getElementById("progress-text").textContent = text;
    box.dataset.state = job.state;
  }

  function follow(id) {
    clearInterval(polling);
    polling = setInterval(async () => {
      try {
        const job = await api.json("GET", "/v1/ingest/" + id);
        progress(job);
        if (job.state === "done" || job.state === "failed") { clearInterval(polling); polling = null; refresh(); }
      } catch (err) { clearInterval(polling); polling = null; document.getElementById("progress-text").textContent = err.message; }
    }, 400);
  }

  async function start(path, body) {
    try {
      const job = await api.json("POST", path, body);
      progress(job);
      follow(job.id);
    } catch (err) {
      document.getElementById("progress").hidden = false;
      document.getElementById("progress").dataset.state = "refused";
      document.getElementById("progress-text").textContent = "Refused: " + err.message;
    }
  }

  function remove(source) {
    if (confirm("Remove " + source + " from the index? (The file itself stays.)")) start("/v1/remove", { source });
  }

  function init() {
    document.getElementById("ingest-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const path = document.getElementById("ingest-path").value.trim();
      if (path) start("/v1/ingest", { path });
    });
    document.getElementById("sync").addEventListener("click", () => start("/v1/sync"));
  }
  return { init, refresh };
})();
