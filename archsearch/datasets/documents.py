"""Synthetic scanned pages: the built-in data of the U-Net family.

Each page imitates the original project's scans: paper texture and noise,
lines of printed text, a table whose first column holds ordering numbers,
and round or rectangular stamps with text, then a slight rotation and blur.
Masks are drawn with the same geometry and warped with the same rotation, so
they stay aligned with the objects.  Object classes:

* ``number``: the ordering numbers in a table's first column (their boxes);
* ``stamp``: the stamp's outline region (circle or rectangle), filled;
* ``table``: the table's outer box; ``text``: the boxes of printed text lines.

The default ``classes: [number, stamp]`` gives masks ``(n, h, w, 2)``.
Everything follows from ``seed``: the same config gives the same pages.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from archsearch.datasets.base import TEST_STREAM, DataSplits, image_size, split_validation
from archsearch.errors import ConfigError

CLASSES = ("number", "stamp", "table", "text")
DEFAULTS: dict[str, Any] = {
    "num_samples": 96,
    "image_size": 128,
    "channels": 1,
    "classes": ["number", "stamp"],
    "validation_split": 0.2,
    "test_samples": 32,
    "seed": 0,
}

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LETTERS = string.ascii_letters + "      "
_STAMP_WORDS = ("PAID", "OK", "COPY", "SEAL", "APPROVED", "No 7", "INC", "LTD")


def load(cfg: Mapping[str, Any]) -> DataSplits:
    """Draw ``num_samples`` pages and split them into training and validation sets."""
    options = {**DEFAULTS, **{k: v for k, v in dict(cfg).items() if v is not None}}
    classes = _classes(options["classes"])
    h, w = image_size(options["image_size"], 16, " to draw a page")
    channels = int(options["channels"])
    if channels not in (1, 3):
        raise ConfigError("data.channels", f"must be 1 or 3, got {channels}")
    n = int(options["num_samples"])
    if n < 2:
        raise ConfigError("data.num_samples", f"must be at least 2 (training and validation), got {n}")
    seed = int(options["seed"])
    n_test = int(options["test_samples"])
    if n_test < 0:
        raise ConfigError("data.test_samples", f"must be 0 or more, got {n_test}")
    x, y = make_pages(n, (h, w), classes=classes, channels=channels, seed=seed)
    x_test, y_test = make_pages(n_test, (h, w), classes=classes, channels=channels, seed=[seed, TEST_STREAM])
    x_train, y_train, x_val, y_val = split_validation(x, y, float(options["validation_split"]), seed)
    return DataSplits("documents", "segmentation", x_train, y_train, x_val, y_val,
                      num_classes=len(classes), class_names=list(classes), x_test=x_test, y_test=y_test)


def make_pages(n: int, size: tuple[int, int] = (128, 128), classes=("number", "stamp"), channels: int = 1,
               seed: int | list[int] = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pages ``(n, h, w, channels)`` in 0..1 and their masks ``(n, h, w, len(classes))`` of 0/1."""
    classes = _classes(classes)
    h, w = size
    x = np.empty((n, h, w, channels), np.float32)
    y = np.empty((n, h, w, len(classes)), np.float32)
    seeds = np.random.SeedSequence(seed).spawn(n)
    for i in range(n):
        image, masks = _page(np.random.default_rng(seeds[i]), h, w)
        if channels == 1:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]
        x[i] = image
        for c, name in enumerate(classes):
            y[i, ..., c] = masks[name]
    return x, y


# --------------------------------------------------------------------------- one page


def _page(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    u = min(h, w) / 128.0  # drawing unit: sizes below are for a 128-pixel page
    # OpenCV draws text on 8-bit images only: draw on uint8, then continue in float.
    paper = np.array([0.93, 0.92, 0.88], np.float32) + rng.uniform(-0.04, 0.04, 3).astype(np.float32)
    image = np.empty((h, w, 3), np.uint8)
    image[:] = np.round(paper * 255).astype(np.uint8)
    ink = tuple(int(v) for v in rng.integers(10, 65, 3))
    masks = {name: np.zeros((h, w), np.uint8) for name in CLASSES}

    # Header text above the table, body text below it.
    font_scale = 0.28 * u
    line_height = max(5, int(round(9 * u)))
    table_top = int(rng.uniform(0.22, 0.35) * h)
    y0 = int(round(10 * u))
    while y0 < table_top - line_height // 2:
        _text_line(image, masks["text"], rng, y0, w, u, font_scale, ink)
        y0 += line_height
    table_bottom = _table(image, masks, rng, table_top, h, w, u, ink)
    y0 = table_bottom + line_height + int(round(2 * u))
    while y0 < h - int(round(6 * u)):
        _text_line(image, masks["text"], rng, y0, w, u, font_scale, ink)
        y0 += line_height

    image = image.astype(np.float32) / 255.0
    # Low-frequency texture (uneven paper and scanner light).
    coarse = rng.normal(0.0, 0.025, (max(2, h // 16), max(2, w // 16))).astype(np.float32)
    image += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
        _stamp(image, masks["stamp"], rng, h, w, u)

    # Scan: slight rotation (image and masks alike), blur, sensor noise.
    angle = rng.uniform(-3.0, 3.0)
    scale = rng.uniform(0.97, 1.03)
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    border = tuple(float(v) for v in paper)
    image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=border)
    sigma = rng.uniform(0.2, 0.7) * u
    image = cv2.GaussianBlur(image, (0, 0), sigma)
    image += rng.normal(0.0, rng.uniform(0.01, 0.035), image.shape).astype(np.float32)
    np.clip(image, 0.0, 1.0, out=image)
    warped = {name: cv2.warpAffine(m, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0).astype(np.float32)
              for name, m in masks.items()}
    return image, warped


def _random_text(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list(_LETTERS), size=length)).strip() or "a"


def _text_line(image, mask, rng, y: int, w: int, u: float, font_scale: float, ink) -> None:
    """A line of printed text at baseline ``y``, from the left margin to a random length."""
    left = int(round(rng.uniform(6, 12) * u))
    right = int(w - rng.uniform(6, 40) * u)
    text = _random_text(rng, 40)
    (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, 1)
    chars = max(1, int(len(text) * (right - left) / max(tw, 1)))
    text = text[:chars].strip() or "a"
    cv2.putText(image, text, (left, y), _FONT, font_scale, ink, 1, cv2.LINE_AA)
    (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, 1)
    cv2.rectangle(mask, (left, y - th), (left + tw, y + base // 2), 1, -1)


def _table(image, masks, rng, top: int, h: int, w: int, u: float, ink) -> int:
    """A ruled table whose first column holds ordering numbers; returns its bottom row."""
    rows = int(rng.integers(3, 7))
    row_h = int(round(rng.uniform(10, 13) * u))
    rows = max(1, min(rows, (int(0.85 * h) - top) // max(row_h, 1)))
    left = int(round(rng.uniform(6, 14) * u))
    right = int(w - rng.uniform(6, 14) * u)
    first_w = int(round(rng.uniform(14, 19) * u))
    columns = int(rng.integers(2, 4))
    edges = [left, left + first_w] + [
        int(left + first_w + (right - left - first_w) * k / columns) for k in range(1, columns + 1)
    ]
    bottom = top + rows * row_h
    line_ink = tuple(min(255, v + 40) for v in ink)
    for r in range(rows + 1):
        cv2.line(image, (left, top + r * row_h), (right, top + r * row_h), line_ink, 1)
    for x in edges:
        cv2.line(image, (x, top), (x, bottom), line_ink, 1)
    cv2.rectangle(masks["table"], (left, top), (right, bottom), 1, -1)

    start = int(rng.choice([1, 1, 1, int(rng.integers(2, 40))]))
    suffix = "." if rng.random() < 0.4 else ""
    number_scale = rng.uniform(0.28, 0.34) * u
    text_scale = 0.26 * u
    for r in range(rows):
        baseline = top + (r + 1) * row_h - max(2, int(round(3 * u)))
        label = f"{start + r}{suffix}"
        scale = number_scale
        (tw, th), base = cv2.getTextSize(label, _FONT, scale, 1)
        while tw > first_w - 4 and scale > 0.15:
            scale *= 0.85
            (tw, th), base = cv2.getTextSize(label, _FONT, scale, 1)
        x0 = left + max(2, (first_w - tw) // 2)
        cv2.putText(image, label, (x0, baseline), _FONT, scale, ink, 1, cv2.LINE_AA)
        cv2.rectangle(masks["number"], (x0 - 1, baseline - th - 1), (x0 + tw, baseline + 1), 1, -1)
        for c in range(1, len(edges) - 1):
            if rng.random() < 0.8:
                cell_w = edges[c + 1] - edges[c] - 4
                text = _random_text(rng, int(rng.integers(2, 12)))
                (cw, _), _ = cv2.getTextSize(text, _FONT, text_scale, 1)
                if cw > cell_w:
                    text = text[: max(1, int(len(text) * cell_w / max(cw, 1)))]
                cv2.putText(image, text, (edges[c] + 2, baseline), _FONT, text_scale, ink, 1, cv2.LINE_AA)
    return bottom


def _stamp(image, mask, rng, h: int, w: int, u: float) -> None:
    """A round or rectangular stamp in coloured ink, blended over what is under it."""
    layer = np.zeros((h, w), np.uint8)
    colour = np.array(
        [(0.15, 0.25, 0.75), (0.45, 0.2, 0.65), (0.75, 0.15, 0.2)][int(rng.integers(0, 3))], np.float32
    )
    thick = max(1, int(round(1.5 * u)))
    word = str(rng.choice(_STAMP_WORDS))
    scale = 0.3 * u
    if rng.random() < 0.55:
        radius = int(round(rng.uniform(13, 20) * u))
        cx = int(rng.uniform(radius + 2, w - radius - 2))
        cy = int(rng.uniform(radius + 2, h - radius - 2))
        cv2.circle(layer, (cx, cy), radius, 255, thick, cv2.LINE_AA)
        cv2.circle(layer, (cx, cy), max(2, radius - int(round(4 * u))), 255, 1, cv2.LINE_AA)
        (tw, th), _ = cv2.getTextSize(word, _FONT, scale, 1)
        while tw > 1.5 * radius and scale > 0.15:
            scale *= 0.85
            (tw, th), _ = cv2.getTextSize(word, _FONT, scale, 1)
        cv2.putText(layer, word, (cx - tw // 2, cy + th // 2), _FONT, scale, 255, 1, cv2.LINE_AA)
        cv2.circle(mask, (cx, cy), radius + thick // 2, 1, -1)
    else:
        sw = int(round(rng.uniform(30, 46) * u))
        sh = int(round(rng.uniform(14, 22) * u))
        x0 = int(rng.uniform(2, w - sw - 2))
        y0 = int(rng.uniform(2, h - sh - 2))
        cv2.rectangle(layer, (x0, y0), (x0 + sw, y0 + sh), 255, thick)
        (tw, th), _ = cv2.getTextSize(word, _FONT, scale, 1)
        while tw > sw - 4 and scale > 0.15:
            scale *= 0.85
            (tw, th), _ = cv2.getTextSize(word, _FONT, scale, 1)
        cv2.putText(layer, word, (x0 + (sw - tw) // 2, y0 + (sh + th) // 2), _FONT, scale, 255, 1, cv2.LINE_AA)
        cv2.rectangle(mask, (x0 - thick // 2, y0 - thick // 2), (x0 + sw + thick // 2, y0 + sh + thick // 2), 1, -1)
    alpha = (layer.astype(np.float32) * (rng.uniform(0.65, 0.9) / 255.0))[..., None]
    image *= 1.0 - alpha * (1.0 - colour)  # ink multiplies what is under it, as on paper


# --------------------------------------------------------------------------- config helpers


def _classes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    classes = tuple(str(c) for c in (value or ()))
    if not classes:
        raise ConfigError("data.classes", "is empty", f"list one or more of: {', '.join(CLASSES)}")
    unknown = [c for c in classes if c not in CLASSES]
    if unknown:
        raise ConfigError("data.classes", f"unknown class {unknown[0]!r}", f"choose from: {', '.join(CLASSES)}")
    if len(set(classes)) != len(classes):
        raise ConfigError("data.classes", f"lists a class twice: {list(classes)}")
    return classes
