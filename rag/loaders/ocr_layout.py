"""Reading order for OCR: recognised line boxes -> the page's text.

Boxes whose vertical centres are within half a line of each other form a line, read
left to right; a gap between lines of more than 1.6 times the usual line spacing (the
lower median) starts a paragraph. A page set in two columns is read column by column:
a gutter is a vertical strip no box crosses, near the middle of the text, with at
least MIN_COLUMN_LINES line-like boxes (a quarter of the text's width or more) on each
side. Boxes that cross it (a title over both columns) cut the page into bands, and
each band is read left column first. Short boxes side by side, as in a table or a
form, do not make columns: their rows are read across, as they are printed.

Boxes are N x 4 corner points, clockwise from the top left, in a frame where the lines
run level (rag/loaders/ocr.py turns them by the page's skew first).
"""

from __future__ import annotations

import math
from typing import Any

MIN_COLUMN_LINES = 5


def layout(boxes: list[Any], texts: list[str]) -> str:
    """The page's text from its boxes and their recognised texts (see the module docstring)."""
    gutter = _gutter(boxes)
    if gutter is None:
        return _lines(boxes, texts)
    parts: list[str] = []
    band: dict[str, list[int]] = {"left": [], "right": [], "wide": []}

    def flush(*sides: str) -> None:
        for side in sides:
            if band[side]:
                parts.append(_lines([boxes[i] for i in band[side]], [texts[i] for i in band[side]]))
                band[side] = []

    for i in sorted(range(len(boxes)), key=lambda i: _centre_y(boxes[i])):
        left, right = _left(boxes[i]), _right(boxes[i])
        if left < gutter < right:
            flush("left", "right")
            band["wide"].append(i)
        else:
            flush("wide")
            band["left" if right <= gutter else "right"].append(i)
    flush("wide", "left", "right")
    return "\n\n".join(parts)


def _gutter(boxes: list[Any]) -> float | None:
    """The x of the gap between two columns, or None for a page of one column."""
    if len(boxes) < 2 * MIN_COLUMN_LINES:
        return None
    start, end = min(map(_left, boxes)), max(map(_right, boxes))
    span = end - start
    lines = sorted((_left(b), _right(b)) for b in boxes if span / 4 <= _right(b) - _left(b) <= span * 0.6)
    best: tuple[float, float] | None = None  # (gap width, its middle)
    reach = start
    for left, right in lines:
        if left > reach and start + 0.3 * span < (left + reach) / 2 < start + 0.7 * span:
            if best is None or left - reach > best[0]:
                best = (left - reach, (left + reach) / 2)
        reach = max(reach, right)
    if best is None:  # the detector's boxes are padded: a real gutter can be a few pixels
        return None
    x = best[1]
    on_left = sum(right <= x for _, right in lines)
    on_right = sum(left >= x for left, _ in lines)
    return x if on_left >= MIN_COLUMN_LINES and on_right >= MIN_COLUMN_LINES else None


def _lines(boxes: list[Any], texts: list[str]) -> str:
    items = sorted(
        ((_centre_y(b), _height(b), _left(b), t.strip()) for b, t in zip(boxes, texts)), key=lambda i: i[0]
    )
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        if lines and abs(item[0] - _mean_y(lines[-1])) <= 0.5 * max(item[1], lines[-1][0][1]):
            lines[-1].append(item)
        else:
            lines.append([item])
    centres = [_mean_y(line) for line in lines]
    steps = sorted(b - a for a, b in zip(centres, centres[1:]))
    usual = steps[(len(steps) - 1) // 2] if steps else 0.0  # the lower median: paragraphs are the exception
    out: list[str] = []
    for n, line in enumerate(lines):
        if n:
            out.append("\n\n" if usual and centres[n] - centres[n - 1] > 1.6 * usual else "\n")
        out.append(" ".join(t for _, _, _, t in sorted(line, key=lambda i: i[2])))
    return "".join(out)


def unskew(boxes: list[Any], skew: float) -> list[Any]:
    """The boxes in a frame turned by -skew degrees, where lines that fall `skew` degrees
    to the right run level."""
    if abs(skew) < 0.5:
        return boxes
    a = math.radians(skew)
    cos, sin = math.cos(a), math.sin(a)
    out = []
    for box in boxes:
        turned = box.copy()
        turned[:, 0] = box[:, 0] * cos + box[:, 1] * sin
        turned[:, 1] = box[:, 1] * cos - box[:, 0] * sin
        out.append(turned)
    return out


def _height(box: Any) -> float:
    return float(math.dist(box[1], box[2]))


def _centre_y(box: Any) -> float:
    return float(sum(p[1] for p in box) / 4)


def _left(box: Any) -> float:
    return float(min(p[0] for p in box))


def _right(box: Any) -> float:
    return float(max(p[0] for p in box))


def _mean_y(line: list[tuple[float, float, float, str]]) -> float:
    return sum(i[0] for i in line) / len(line)
