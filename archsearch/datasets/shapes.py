"""Synthetic shapes: the offline default dataset, generated in milliseconds.

Small grayscale images of one shape each (circle, rectangle, triangle, cross,
ellipse, star) drawn with OpenCV at a random position, size, rotation, line
thickness and brightness, plus a little noise.  Position and rotation vary
only moderately, so a small MLP learns the classes within a few epochs while a
CNN still does clearly better.  The same ``seed`` always gives the same
images, so searches and tests are reproducible without downloads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from archsearch.datasets.base import TEST_STREAM, DataSplits, split_validation
from archsearch.errors import ConfigError

SHAPES = ("circle", "rectangle", "triangle", "cross", "ellipse", "star")
MIN_IMAGE_SIZE = 12
SHIFT = 4  # OpenCV fixed-point bits: sub-pixel positions keep small shapes smooth
SCALE = 1 << SHIFT
JITTER = 0.12  # how far (fraction of the image) a shape's centre may move
MAX_ROTATION = np.radians(30)  # shapes keep a recognisable orientation (a cross stays "+"-like)


def _polygon(cx: float, cy: float, radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
    return np.round(pts * SCALE).astype(np.int32)


def _draw(img: np.ndarray, kind: str, cx: float, cy: float, r: float, angle: float,
          color: int, thickness: int, rng: np.random.Generator) -> None:
    """Draw one shape of radius ``r`` centred at (cx, cy); thickness -1 fills it."""
    aa = cv2.LINE_AA
    if kind == "circle":
        cv2.circle(img, (round(cx * SCALE), round(cy * SCALE)), round(r * SCALE), color, thickness, aa, SHIFT)
    elif kind == "ellipse":
        axes = (round(r * SCALE), round(r * rng.uniform(0.35, 0.55) * SCALE))
        cv2.ellipse(img, (round(cx * SCALE), round(cy * SCALE)), axes, np.degrees(angle), 0, 360,
                    color, thickness, aa, SHIFT)
    elif kind == "cross":
        w = max(1, thickness if thickness > 0 else round(r * 0.4))
        for a in (angle, angle + np.pi / 2):
            dx, dy = r * np.cos(a), r * np.sin(a)
            p1 = (round((cx - dx) * SCALE), round((cy - dy) * SCALE))
            p2 = (round((cx + dx) * SCALE), round((cy + dy) * SCALE))
            cv2.line(img, p1, p2, color, w, aa, SHIFT)
    else:
        if kind == "rectangle":
            half = np.arctan(rng.uniform(0.6, 1.0))  # aspect ratio via the corner angle
            angles = angle + np.array([half, np.pi - half, np.pi + half, -half])
            radii = np.full(4, r)
        elif kind == "triangle":
            angles = angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3  # pointing up
            radii = np.full(3, r)
        else:  # star
            angles = angle - np.pi / 2 + np.arange(10) * np.pi / 5
            radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = _polygon(cx, cy, radii, angles)
        if thickness < 0:
            cv2.fillPoly(img, [pts], color, aa, SHIFT)
        else:
            cv2.polylines(img, [pts], True, color, thickness, aa, SHIFT)


def generate(num_samples: int = 1200, image_size: int = 28, num_classes: int = 4,
             seed: int | Sequence[int] = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: float32 images ``(n, size, size, 1)`` in 0..1 and balanced int class ids.

    ``seed`` may be a sequence: ``[seed, TEST_STREAM]`` draws the test images from a stream of their own.
    """
    rng = np.random.default_rng(seed)
    size = int(image_size)
    y = rng.permutation(np.arange(num_samples) % num_classes).astype(np.int64)
    x = np.empty((num_samples, size, size), dtype=np.uint8)
    for i, label in enumerate(y):
        background = int(rng.integers(0, 60))
        img = np.full((size, size), background, dtype=np.uint8)
        r = rng.uniform(0.25, 0.4) * size
        # the centre moves by up to JITTER of the image, staying inside it
        room = max(0.0, min(JITTER * size, size / 2 - r - 1))
        cx, cy = size / 2 + rng.uniform(-room, room, size=2)
        thickness = int(rng.choice([-1, 2]))
        color = int(rng.integers(150, 256))
        _draw(img, SHAPES[label], cx, cy, r, rng.uniform(-MAX_ROTATION, MAX_ROTATION), color, thickness, rng)
        x[i] = img
    noise = rng.normal(0.0, 0.04, size=x.shape).astype(np.float32)
    images = np.clip(x.astype(np.float32) / 255.0 + noise, 0.0, 1.0)
    return images[..., None], y


def _int(cfg: Mapping[str, Any], key: str, default: int, low: int, high: int | None = None) -> int:
    raw = cfg.get(key, default)
    raw = default if raw is None else raw
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"data.{key}", f"{raw!r} is not an integer") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"data.{key}", f"{value} is out of range", f"use a value {bounds}")
    return value


def load(cfg: Mapping[str, Any]) -> DataSplits:
    """The shapes dataset described by ``conf/data/shapes.yaml``."""
    num_classes = _int(cfg, "num_classes", 4, 2, len(SHAPES))
    image_size = _int(cfg, "image_size", 28, MIN_IMAGE_SIZE)
    num_samples = _int(cfg, "num_samples", 1200, 2 * num_classes)
    seed = _int(cfg, "seed", 0, 0)
    test_samples = _int(cfg, "test_samples", 400, 0)
    x, y = generate(num_samples, image_size, num_classes, seed)
    x_test, y_test = generate(test_samples, image_size, num_classes, [seed, TEST_STREAM])
    x_train, y_train, x_val, y_val = split_validation(x, y, float(cfg.get("validation_split", 0.2)), seed)
    return DataSplits("shapes", "classification", x_train, y_train, x_val, y_val, num_classes,
                      list(SHAPES[:num_classes]), x_test, y_test)
