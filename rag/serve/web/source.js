// The source view: the quote where it stands. Text view: the stored page text around the
// quote with the quote marked. PDF view: the rendered page with the quote's characters
// boxed (the boxes are fractions of the image, so they follow it as it scales).
"use strict";

const sourceView = (() => {
  const panel = () => document.getElementById("source");
  let opener = null; // the button that opened the view gets the focus back on close
  let shown = null;
  let imageUrl = null;

  function close() {
    panel().hidden = true;
    document.body.classList.remove("with-source");
    if (imageUrl) { URL.revokeObjectURL(imageUrl); imageUrl = null; }
    if (opener && document.contains(opener)) opener.focus();
    opener = shown = null;
  }

  async function open(target, from) {
    opener = from || null;
    shown = target;
    const p = panel();
    p.hidden = false;
    document.body.classList.add("with-source");
    document.getElementById("source-note").textContent = "";
    document.getElementById("pdf-view").replaceChildren();
    document.getElementById("text-view").replaceChildren(el("p", { class: "hint", text: "Loading..." }));
    meta(target);
    originalLink(target);
    const isPdf = /\.pdf$/i.test(target.source) && target.page !== null && target.page !== undefined;
    const toggle = document.getElementById("view-toggle");
    toggle.hidden = !isPdf;
    p.focus();
    try {
      await textView(target);
    } catch (err) {
      note("The stored text could not be loaded: " + err.message);
    }
    if (isPdf) {
      showPdf(true);
      try { await pdfView(target); } catch (err) { note("The page image is not available: " + err.message); showPdf(false); }
    } else {
      showPdf(false);
    }
  }

  function note(text) { document.getElementById("source-note").textContent = text; }

  function meta(t) {
    const page = t.page !== null && t.page !== undefined ? "page " + t.page : "no pages";
    document.getElementById("source-meta").replaceChildren(
      el("strong", { class: "source-file", "data-testid": "source-file", text: t.source }),
      el("span", { class: "hint", text: " · " + page + " · characters " + t.start + "–" + t.end }));
  }

  function originalLink(t) {
    const a = document.getElementById("original");
    a.hidden = false;
    const url = "/v1/original?" + api.query({ source: t.source });
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.onclick = api.hasToken() ? async (e) => {
      e.preventDefault(); // a link cannot carry the token: fetch it, then hand it over as a download
      try {
        const data = await api.blob(url);
        const link = el("a", { href: URL.createObjectURL(data), download: t.source.split("/").pop() });
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      } catch (err) { note("The original is not available: " + err.message); }
    } : null;
  }

  async function textView(t) {
    const page = await api.json("GET", "/v1/page?" + api.query({ source: t.source, page: t.page, start: t.start, end: t.end }));
    const text = page.text, at = (n) => n - page.offset;
    const quote = text.slice(at(t.start), at(t.end));
    const mark = el("mark", { "data-testid": "quote-highlight", class: "quote" });
    const span = t.span;
    if (span && span.start >= t.start && span.end <= t.end) {
      mark.append(quote.slice(0, span.start - t.start),
        el("strong", { class: "answer-span", "data-testid": "answer-span", text: quote.slice(span.start - t.start, span.end - t.start) }),
        quote.slice(span.end - t.start));
    } else {
      mark.textContent = quote;
    }
    const view = document.getElementById("text-view");
    view.replaceChildren(el("div", { class: "page-text" },
      page.offset > 0 ? "…" : "", text.slice(0, at(t.start)), mark, text.slice(at(t.end)),
      page.offset + text.length < page.length ? "…" : ""));
    if (!view.closest("[hidden]")) mark.scrollIntoView({ block: "center" });
  }

  async function pdfView(t) {
    const scale = 2;
    const span = t.span;
    const q = { source: t.source, page: t.page, scale };
    const boxesUrl = "/v1/pdf/boxes?" + api.query(Object.assign({ start: t.start, end: t.end,
      span_start: span ? span.start : null, span_end: span ? span.end : null }, q));
    const [image, boxes] = await Promise.all([api.blob("/v1/pdf/render?" + api.query(q)), api.json("GET", boxesUrl)]);
    if (shown !== t) return; // another source was opened meanwhile
    imageUrl = URL.createObjectURL(image);
    const frame = el("div", { class: "pdf-frame", "data-testid": "pdf-page" },
      el("img", { src: imageUrl, alt: "page " + t.page + " of " + t.source, width: boxes.width, height: boxes.height }));
    const layer = (spanBoxes, cls, testid) => spanBoxes.boxes.map((b) => el("div", {
      class: cls, "data-testid": testid, "data-box": b.join(","),
    }));
    const place = (node, b) => {
      node.style.left = (100 * b[0] / boxes.width) + "%";
      node.style.top = (100 * b[1] / boxes.height) + "%";
      node.style.width = (100 * (b[2] - b[0]) / boxes.width) + "%";
      node.style.height = (100 * (b[3] - b[1]) / boxes.height) + "%";
      return node;
    };
    const quoteBoxes = layer(boxes.spans[0], "box", "quote-box");
    quoteBoxes.forEach((n, i) => frame.append(place(n, boxes.spans[0].boxes[i])));
    if (boxes.spans[1]) layer(boxes.spans[1], "box span-box", "span-box").forEach((n, i) => frame.append(place(n, boxes.spans[1].boxes[i])));
    frame.dataset.matched = boxes.spans[0].matched;
    frame.dataset.width = boxes.width; // the image's own pixels, which the boxes are in
    frame.dataset.height = boxes.height;
    document.getElementById("pdf-view").replaceChildren(frame);
    if (boxes.spans[0].matched < 1) note("Boxed " + Math.round(100 * boxes.spans[0].matched) + "% of the quote's characters on the page image.");
    if (quoteBoxes.length) quoteBoxes[0].scrollIntoView({ block: "center" });
  }

  function showPdf(on) {
    document.getElementById("pdf-view").hidden = !on;
    document.getElementById("text-view").hidden = on;
    const toggle = document.getElementById("view-toggle");
    toggle.textContent = on ? "Text view" : "Page image";
    if (!on) {
      const mark = document.querySelector("#text-view mark");
      if (mark) mark.scrollIntoView({ block: "center" });
    }
  }

  function init() {
    document.getElementById("source-close").addEventListener("click", close);
    document.getElementById("view-toggle").addEventListener("click", () => {
      const pdfShown = !document.getElementById("pdf-view").hidden;
      if (!pdfShown && !document.getElementById("pdf-view").firstChild && shown) {
        showPdf(true); pdfView(shown).catch((err) => { note(err.message); showPdf(false); });
      } else showPdf(!pdfShown);
    });
    document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !panel().hidden) close(); });
  }

  return { open, close, init };
})();
