"""Optical character recognition of page images, with RapidOCR: PP-OCR detection,
line-orientation and recognition models run by ONNX Runtime. The models ship inside the
rapidocr wheel and its OpenCV is the headless build, so nothing is downloaded and no
display library (libGL) is needed.

`recognise(image)` puts a page upright before reading it. PP-OCR's own classifier only
turns single lines by 180 degrees, and lines it turns still come out in the page's
order, bottom first. So the page's turn is found first, cheaply: the detector's boxes
say whether the lines run across or down the page (90/270), a vote of the line
classifier over the widest lines says whether the page is upside down (180), and the
median slope of the long lines gives the skew. Then each box is cut out straightened
(a skewed line is a turned rectangle) and read, without a second detection pass. The
text is laid out from the boxes, in a frame turned by the skew, by
rag/loaders/ocr_layout.py (lines, paragraphs, columns).

One engine per process, built on first use (3-6 s). A page costs one detection (two
when it lies on its side), a few classifier looks and the recognition of each line,
which dominates: an A4 page of 14 lines took about 5 s of CPU, 11-18 s of wall clock
on two cores shared with other jobs (bench/ocr.py), with a character error rate under
0.5% upright, turned or skewed.
"""

from __future__ import annotations

import functools
import logging
import math
import signal
from dataclasses import dataclass
from typing import Any

from ..errors import RagError
from .ocr_layout import layout, unskew

log = logging.getLogger(__name__)

# Recognition below this confidence is dropped as noise (speckles read as letters).
MIN_SCORE = 0.5
# The detector looks at the page with its long side at most this many pixels: an A4 page
# at 1280 px keeps 10-point text about 15 px tall, enough for the detector; the lines are
# then cut from the full image for recognition. 1280 detected as well as the engine's
# default (short side 736 or more, 2.7x the pixels here) at a third of the time.
DETECT_SIDE = 1280
# The recognition image's long side; larger scans are scaled down to it first.
MAX_SIDE = 2000
# Seconds of time limit granted per page to be recognised (see allow_time): the slowest
# page measured took 18 s on two cores shared with other jobs.
SECONDS_PER_PAGE = 60.0
_VOTE_LINES = 5  # widest lines whose orientation votes on "upside down"
# The line classifier sees 192 x 48 pixels: a whole line squeezed into that is noise to it
# (upright lines of a page were called upside down with 0.97 confidence), so it is shown
# pieces of about that shape, up to this many per line.
_VOTE_PIECES = 3


@dataclass(frozen=True)
class Recognised:
    text: str  # lines in reading order; "" when the image holds no readable text
    score: float  # mean confidence of the lines kept (0 when none)
    turned: int  # degrees (counter-clockwise) the page was turned to read it: 0, 90, 180, 270
    skew: float  # degrees the lines fall to the right (negative: they rise)


def recognise(image: Any) -> Recognised:
    """Read the text of one page image (a PIL image), whatever its orientation.

    Raises:
        RagError: rapidocr is not installed.
    """
    import numpy as np

    page = _grey(image)
    boxes = _detect(np.asarray(page))
    if boxes is None:
        return Recognised("", 0.0, 0, 0.0)
    turned = 0
    if _runs_down(boxes):
        page = page.rotate(90, expand=True)  # PIL turns counter-clockwise
        turned = 90
        boxes = _detect(np.asarray(page))
        if boxes is None:
            return Recognised("", 0.0, 0, 0.0)
    if _upside_down(page, boxes):
        page = page.rotate(180)
        boxes = _turn_boxes_180(boxes, page.size)
        turned = (turned + 180) % 360
    skew = _skew(boxes)
    kept = [(box, text, score) for box, (text, score) in zip(boxes, map(_read_line, (_crop(page, b) for b in boxes)))
            if score >= MIN_SCORE and text.strip()]
    if not kept:
        return Recognised("", 0.0, turned, skew)
    score = sum(s for _, _, s in kept) / len(kept)
    log.debug("OCR: turned %d, skew %.1f, %d boxes, mean confidence %.3f", turned, skew, len(kept), score)
    straight = unskew([b for b, _, _ in kept], skew)
    return Recognised(layout(straight, [t for _, t, _ in kept]), score, turned, skew)


def allow_time(pages: int) -> None:
    """Lengthen the per-file time limit, if one is running (rag/loaders/__init__.py arms
    it with SIGALRM around a timed family), by SECONDS_PER_PAGE for each page about to be
    recognised: the limit is there to stop a parser that loops, and recognition is slow
    but bounded, so a long scan should not fail for being long."""
    if pages <= 0 or not hasattr(signal, "getitimer"):
        return
    remaining, interval = signal.getitimer(signal.ITIMER_REAL)
    if remaining > 0:
        signal.setitimer(signal.ITIMER_REAL, remaining + pages * SECONDS_PER_PAGE, interval)


# Every call names all three steps: RapidOCR keeps a call's step switches for the next.
@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    """The one RapidOCR engine of this process (its models load on first use)."""
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:
        raise RagError(f"OCR needs the rapidocr package ({exc}): pip install rapidocr") from None
    import multiprocessing

    # In a loader worker (ingest --workers) the pool is the parallelism: one thread each.
    # Elsewhere ONNX Runtime takes every core (on two cores shared with other jobs, one
    # thread read a page in 12 s and 3.5 s of CPU, two in 15-16 s and 4.2-4.6 s).
    threads = 1 if multiprocessing.parent_process() is not None else -1
    return RapidOCR(params={
        # RapidOCR logs to stderr itself; only its errors, then: "no text found" is ours to report.
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "Global.max_side_len": MAX_SIDE,
        "Global.text_score": MIN_SCORE,
        "Det.limit_type": "max",
        "Det.limit_side_len": DETECT_SIDE,
    })


def _grey(image: Any) -> Any:
    """A greyscale copy, transparent areas on white (text drawn on a transparent
    background would otherwise vanish into black), no larger than MAX_SIDE."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    grey = image.convert("L")
    if max(grey.size) > MAX_SIDE:
        grey.thumbnail((MAX_SIDE, MAX_SIDE), _bicubic())
    return grey


def _bicubic() -> Any:
    from PIL import Image

    return Image.Resampling.BICUBIC


def _detect(pixels: Any) -> Any:
    """The text boxes of an image (N x 4 corner points, clockwise from top left), or None."""
    result = _engine()(pixels, use_det=True, use_cls=False, use_rec=False)
    boxes = getattr(result, "boxes", None)
    return boxes if boxes is not None and len(boxes) else None


def _runs_down(boxes: Any) -> bool:
    """Most of the text (by box area) lies in boxes taller than they are wide: the page is
    turned by 90 or 270 degrees. A single word can be either, hence weighing by area."""
    across = down = 0.0
    for box in boxes:
        w, h = _width(box), _height(box)
        if w >= h:
            across += w * h
        else:
            down += w * h
    return down > across


def _upside_down(page: Any, boxes: Any) -> bool:
    """The line classifier's vote, over the widest lines, weighted by its confidence."""
    widest = sorted(boxes, key=_width, reverse=True)[:_VOTE_LINES]
    vote = 0.0
    for box in widest:
        crop = _crop(page, box)
        if crop is None:
            continue
        height, width = crop.shape[:2]
        step = 4 * height
        for left in range(0, max(width - step // 2, 1), step)[:_VOTE_PIECES]:
            result = _engine()(crop[:, left:left + step], use_det=False, use_cls=True, use_rec=False)
            for label, score in getattr(result, "cls_res", None) or ():
                vote += score if str(label) == "180" else -score
    return vote > 0


def _read_line(crop: Any) -> tuple[str, float]:
    """One line's text and confidence. The page is upright by now, so the classifier's own
    turn of single lines would only add its mistakes on long lines (see _VOTE_PIECES)."""
    if crop is None:
        return "", 0.0
    result = _engine()(crop, use_det=False, use_cls=False, use_rec=True)
    texts, scores = getattr(result, "txts", None), getattr(result, "scores", None)
    return (str(texts[0]), float(scores[0])) if texts and scores else ("", 0.0)


def _crop(page: Any, box: Any) -> Any:
    """The line in `box` cut out and straightened (a skewed box is a rotated rectangle),
    as pixels; None for a sliver."""
    import numpy as np
    from PIL import Image

    width, height = int(round(_width(box))), int(round(_height(box)))
    if width < 4 or height < 4:
        return None
    corners = (box[0], box[3], box[2], box[1])  # PIL's QUAD order: ul, ll, lr, ur
    quad = tuple(float(v) for point in corners for v in point)
    return np.asarray(page.transform((width, height), Image.Transform.QUAD, quad, _bicubic()))


def _turn_boxes_180(boxes: Any, size: tuple[int, int]) -> Any:
    width, height = size
    turned = boxes.copy()
    turned[:, :, 0] = width - boxes[:, :, 0]
    turned[:, :, 1] = height - boxes[:, :, 1]
    return turned[:, [2, 3, 0, 1], :]  # the corners keep their clockwise-from-top-left order


def _skew(boxes: Any) -> float:
    """Median slope, in degrees, of the boxes at least four times as wide as tall (lines,
    not words), positive when a line falls to the right; 0 without such lines."""
    slopes = []
    for box in boxes:
        if _width(box) >= 4 * _height(box):
            (x0, y0), (x1, y1) = box[0], box[1]
            slopes.append(math.degrees(math.atan2(y1 - y0, x1 - x0)))
    if not slopes:
        return 0.0
    slopes.sort()
    return slopes[len(slopes) // 2]


def _width(box: Any) -> float:
    return float(math.dist(box[0], box[1]))


def _height(box: Any) -> float:
    return float(math.dist(box[1], box[2]))
