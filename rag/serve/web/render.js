// Building the page's elements. Document text only ever goes in as a text node
// (textContent / createTextNode): a document's "<script>" is shown, never run.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

const REASONS = {
  no_hits: "nothing in the index matched the question",
  missing_terms: "names or numbers of the question appear in no source",
  far: "the closest passages are too far from the question",
  not_covered: "the best passage covers too little of the question",
  not_answered: "the reader judged that no passage answers it",
  model_refused: "the model said the sources do not answer it",
};

function where(item) {
  const at = item.location || (item.page !== null && item.page !== undefined ? "p. " + item.page : "");
  return item.source + (at ? ", " + at : "");
}

// A citation button: opens the source at the quote (or, lacking one, the cited passage).
function citationButton(id, target, answer) {
  const label = "[" + id + "]";
  if (!target) return el("span", { class: "citation missing", title: "no source has this number", text: label });
  return el("button", {
    type: "button", class: "citation", "data-testid": "citation", "data-source": target.source,
    "data-start": target.start, "data-end": target.end, title: where(target), text: label,
    onclick: (e) => sourceView.open(Object.assign({ span: answerSpan(answer, target) }, target), e.currentTarget),
  });
}

// The located answer span, when the answer has one inside this quote (else null).
function answerSpan(answer, target) {
  const s = answer && answer.answer_span;
  if (!s || s.source !== target.source || (s.page ?? null) !== (target.page ?? null)) return null;
  return s.start >= target.start && s.end <= target.end ? s : null;
}

// What a citation [id] of `sentence` points at: the sentence's own quote, the answer's
// quote for that source, or the whole cited passage.
function citationTarget(answer, id, sentence) {
  const own = sentence && (sentence.quotes || []).find((q) => q.id === id);
  const cited = (answer.citations || []).find((c) => c.id === id);
  const quote = own || (cited && cited.quote);
  if (quote) return { source: quote.source, page: quote.page, start: quote.start, end: quote.end, text: quote.text };
  const hit = (answer.sources || [])[id - 1];
  if (!hit) return null;
  return { source: hit.source, page: hit.page, start: hit.span[0], end: hit.span[1], text: hit.text };
}

const MARKER = /\s*\[(\d+)\]/g;

// Text with [n] markers -> text nodes and citation buttons.
function withCitations(text, answer, sentence) {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    parts.push(text.slice(last, m.index));
    parts.push(" ", citationButton(Number(m[1]), citationTarget(answer, Number(m[1]), sentence), answer));
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function renderAnswer(node, answer) {
  node.replaceChildren();
  node.classList.remove("draft");
  if (!answer.answerable) return renderRefusal(node, answer);
  const kept = (answer.sentences || []).filter((s) => s.supported);
  const body = el("p", { class: "answer-text" });
  if (kept.length) {
    for (const s of kept) {
      const ids = s.citations.filter((id) => !new RegExp("\\[" + id + "\\]").test(s.text));
      body.append(el("span", { class: "sentence" }, ...withCitations(s.text, answer, s),
        ...ids.flatMap((id) => [" ", citationButton(id, citationTarget(answer, id, s), answer)])), " ");
    }
  } else {
    body.append(...withCitations(answer.answer || "", answer, null));
  }
  node.append(body);
  const span = answer.answer_span;
  if (span && span.text) node.append(el("p", { class: "hint" }, "Answer span: ", el("strong", { text: span.text })));
}

function renderRefusal(node, answer) {
  node.classList.add("refusal");
  const reason = REASONS[answer.abstain_reason] || answer.abstain_reason || "";
  node.append(el("p", { class: "answer-text", text: answer.answer || "The documents do not contain the answer." }));
  if (reason) node.append(el("p", { class: "reason", "data-testid": "refusal-reason", text: "Why: " + reason + "." }));
  if ((answer.missing || []).length) node.append(el("p", { class: "hint", text: "Not found: " + answer.missing.join(", ") }));
  const closest = (answer.hits || []).slice(0, 3);
  if (!closest.length) return;
  node.append(el("p", { class: "hint", text: "Closest passages:" }));
  node.append(el("ol", { class: "closest" }, ...closest.map((h) => el("li", {}, hitButton(h)))));
}

// A search hit or closest passage: opens the source at the passage.
function hitButton(h) {
  const target = { source: h.source, page: h.page, start: h.span[0], end: h.span[1], text: h.text };
  return el("button", { type: "button", class: "hit", "data-testid": "hit", onclick: (e) => sourceView.open(target, e.currentTarget) },
    el("span", { class: "hit-where", text: where(h) }),
    el("span", { class: "score", text: " score " + Number(h.score).toFixed(3) +
      (h.similarity !== null && h.similarity !== undefined ? " · similarity " + Number(h.similarity).toFixed(3) : "") }),
    el("span", { class: "hit-text", text: h.text }));
}
