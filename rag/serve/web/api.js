// The server's JSON endpoints, with the token when the server wants one.
// The token lives in sessionStorage (gone when the tab closes), never in the URL.
"use strict";

const api = (() => {
  const KEY = "rag.token";
  let waiting = null; // a promise resolved once the user gives a token

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const token = sessionStorage.getItem(KEY);
    if (token) h["Authorization"] = "Bearer " + token;
    return h;
  }

  function askToken() {
    if (waiting) return waiting;
    const form = document.getElementById("token-form");
    const input = document.getElementById("token-input");
    form.hidden = false;
    input.focus();
    waiting = new Promise((resolve) => {
      form.onsubmit = (e) => {
        e.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        form.hidden = true;
        waiting = null;
        resolve();
      };
    });
    return waiting;
  }

  async function request(method, path, body, accept) {
    for (let attempt = 0; attempt < 3; attempt++) {
      const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
      if (body) init.body = JSON.stringify(body);
      if (accept) init.headers["Accept"] = accept;
      const r = await fetch(path, init);
      if (r.status === 401) { await askToken(); continue; }
      return r;
    }
    throw new Error("the token was refused");
  }

  async function failure(r) {
    try {
      const body = await r.json();
      if (body && body.error && body.error.message) return new Error(body.error.message);
    } catch (_) { /* not JSON */ }
    return new Error(r.status + " " + r.statusText);
  }

  async function json(method, path, body) {
    const r = await request(method, path, body);
    if (!r.ok) throw await failure(r);
    return r.json();
  }

  async function blob(path) {
    const r = await request("GET", path);
    if (!r.ok) throw await failure(r);
    return r.blob();
  }

  // POST with "stream": true; calls on(kind, data) per Server-Sent Event as it arrives.
  async function stream(path, body, on) {
    const r = await request("POST", path, body, "text/event-stream");
    if (!r.ok) throw await failure(r);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let kind = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) kind = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) on(kind, JSON.parse(data));
      }
    }
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
    return q.toString();
  }

  const hasToken = () => Boolean(sessionStorage.getItem(KEY));
  return { json, blob, stream, query, hasToken };
})();
