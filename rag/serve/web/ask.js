// Ask: conversations kept in this browser (localStorage), follow-ups sent with the turns
// before them (POST /v1/ask "history"), the answer streamed as the model writes it.
"use strict";

const conversations = (() => {
  const KEY = "rag.conversations", CURRENT = "rag.conversation", KEEP = 30;
  const load = () => { try { return JSON.parse(localStorage.getItem(KEY)) || []; } catch (_) { return []; } };
  const save = (all) => {
    all = all.slice(-KEEP);
    for (;;) {
      try { localStorage.setItem(KEY, JSON.stringify(all)); return; } catch (_) {
        if (all.length <= 1) return; // storage full: keep what fits, newest first
        all = all.slice(1);
      }
    }
  };
  function current() {
    const all = load(), id = localStorage.getItem(CURRENT);
    return all.find((c) => c.id === id) || null;
  }
  function create() {
    const c = { id: String(Date.now()) + Math.random().toString(16).slice(2, 6), title: "", turns: [], created: Date.now() };
    save([...load(), c]);
    localStorage.setItem(CURRENT, c.id);
    return c;
  }
  function addTurn(c, turn) {
    const all = load();
    const stored = all.find((x) => x.id === c.id) || c;
    stored.turns.push(turn);
    stored.title = stored.title || turn.question.slice(0, 60);
    save([...all.filter((x) => x.id !== c.id), stored]);
    return stored;
  }
  function remove(id) { save(load().filter((c) => c.id !== id)); localStorage.removeItem(CURRENT); }
  const select = (id) => localStorage.setItem(CURRENT, id);
  return { load, current, create, addTurn, remove, select };
})();

const ask = (() => {
  let busy = false;

  function turnNode(question) {
    const answer = el("div", { class: "answer draft", "data-testid": "answer", "aria-live": "polite" });
    const li = el("li", { class: "turn" }, el("p", { class: "question-text", text: question }), answer);
    document.getElementById("turns").append(li);
    return answer;
  }

  function showConversation() {
    const c = conversations.current();
    const list = document.getElementById("turns");
    list.replaceChildren();
    for (const t of (c ? c.turns : [])) renderAnswer(turnNode(t.question), t.answer);
    const select = document.getElementById("conversation");
    select.replaceChildren(...conversations.load().slice().reverse().map((x) =>
      el("option", { value: x.id, selected: c && x.id === c.id, text: x.title || "(new conversation)" })));
    if (!c) select.prepend(el("option", { value: "", selected: true, text: "(new conversation)" }));
  }

  async function submit() {
    const box = document.getElementById("question");
    const question = box.value.trim();
    if (!question || busy) return;
    busy = true;
    document.getElementById("ask").disabled = true;
    const c = conversations.current() || conversations.create();
    const history = c.turns.map((t) => ({ question: t.question, answer: t.answer.answer || "", answerable: Boolean(t.answer.answerable) }));
    const node = turnNode(question);
    box.value = "";
    const strategy = document.getElementById("strategy").value;
    const body = { question, stream: true };
    if (history.length) body.history = history;
    if (strategy) body.strategy = strategy;
    const started = performance.now();
    let draft = "", answer = null;
    node.textContent = "Searching…";
    try {
      await api.stream("/v1/ask", body, (kind, data) => {
        if (kind === "token") {
          if (!draft) node.dataset.ttftMs = String(Math.round(performance.now() - started));
          draft += data.text;
          node.textContent = draft;
        } else if (kind === "answer") answer = data;
        else if (kind === "error") throw new Error(data.error.message);
      });
      if (!answer) throw new Error("the stream ended without an answer");
      node.dataset.totalMs = String(Math.round(performance.now() - started));
      renderAnswer(node, answer);
      conversations.addTurn(c, { question, answer, at: Date.now() });
      showConversationList();
    } catch (err) {
      node.classList.remove("draft");
      node.classList.add("error");
      node.textContent = "Failed: " + err.message;
    } finally {
      busy = false;
      document.getElementById("ask").disabled = false;
      node.scrollIntoView({ block: "nearest" });
      box.focus();
    }
  }

  function showConversationList() {
    const c = conversations.current();
    const select = document.getElementById("conversation");
    select.replaceChildren(...conversations.load().slice().reverse().map((x) =>
      el("option", { value: x.id, selected: c && x.id === c.id, text: x.title || "(new conversation)" })));
  }

  function init() {
    const box = document.getElementById("question");
    document.getElementById("ask-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
    box.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
    });
    document.getElementById("new-conversation").addEventListener("click", () => {
      conversations.create(); showConversation(); box.focus();
    });
    document.getElementById("delete-conversation").addEventListener("click", () => {
      const c = conversations.current();
      if (c) conversations.remove(c.id);
      showConversation();
    });
    document.getElementById("conversation").addEventListener("change", (e) => {
      if (e.target.value) conversations.select(e.target.value);
      showConversation();
    });
    showConversation();
  }

  return { init, submit };
})();
