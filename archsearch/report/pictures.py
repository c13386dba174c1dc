"""Pictures of what the best model does, drawn with OpenCV (no plotting dependency).

``predictions.png`` shows a few validation samples of a segmentation search
side by side: the input, the true masks and the predicted masks, one class
colour each, so a user sees at a glance whether the model finds the objects; a legend
under the grid names the class of each colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from archsearch.core.atomic import atomic_path

# BGR colours for up to eight classes; more classes cycle.
_COLOURS = np.array(
    [(60, 60, 230), (60, 180, 60), (230, 120, 40), (40, 200, 230), (200, 60, 200), (200, 200, 60),
     (120, 120, 255), (255, 160, 160)],
    dtype=np.float32,
)


def _to_bgr(image: np.ndarray) -> np.ndarray:
    image = np.clip(image, 0.0, 1.0)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return (image[..., :3] * 255).astype(np.float32)


def overlay(image: np.ndarray, masks: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Paint each mask channel over the image in its class colour."""
    canvas = _to_bgr(image)
    for c in range(masks.shape[-1]):
        m = masks[..., c:c + 1] > 0.5
        colour = _COLOURS[c % len(_COLOURS)]
        canvas = np.where(m, (1 - alpha) * canvas + alpha * colour, canvas)
    return canvas.astype(np.uint8)


def legend(width: int, names: list[str]) -> np.ndarray:
    """White rows of ``[colour] class name`` entries, as many per row as fit in ``width`` pixels."""
    import cv2

    entries = []
    for c, name in enumerate(names):
        (text_w, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        entries.append((c, name, 22 + text_w + 12))
    rows: list[list[tuple[int, str, int]]] = [[]]
    for entry in entries:
        if rows[-1] and sum(e[2] for e in rows[-1]) + entry[2] > width - 8:
            rows.append([])
        rows[-1].append(entry)
    strip = np.full((22 * len(rows) + 4, width, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        x, top = 4, 4 + 22 * r
        for c, name, w in row:
            colour = tuple(int(v) for v in _COLOURS[c % len(_COLOURS)])
            cv2.rectangle(strip, (x, top + 2), (x + 14, top + 16), colour, thickness=-1)
            cv2.putText(strip, name, (x + 20, top + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
            x += w
    return strip


def save_predictions(model, splits, path: str | Path, num_samples: int = 4, threshold: float = 0.5) -> Path:
    """Write a grid: one row per validation sample, columns input | true masks | predicted masks,
    and the legend of the class colours (``splits.class_names``, else the channel numbers)."""
    import cv2

    n = min(num_samples, len(splits.x_val))
    x = splits.x_val[:n]
    y = splits.y_val[:n]
    predicted = np.asarray(model.predict(x, verbose=0))
    if predicted.shape[-1] > 1 and np.allclose(predicted.sum(-1), 1.0, atol=1e-3) and y.shape[-1] == predicted.shape[-1]:
        # softmax output: one-hot of the arg-max
        predicted = np.eye(predicted.shape[-1], dtype=np.float32)[predicted.argmax(-1)]
    else:
        predicted = (predicted >= threshold).astype(np.float32)
    rows = []
    for i in range(n):
        cells = [_to_bgr(x[i]).astype(np.uint8), overlay(x[i], y[i]), overlay(x[i], predicted[i])]
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells], axis=1))
    grid = np.concatenate(rows, axis=0)
    scale = max(1, 256 // grid.shape[1] + 1) if grid.shape[1] < 256 else 1
    if scale > 1:
        grid = cv2.resize(grid, (grid.shape[1] * scale, grid.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    header = np.full((24, grid.shape[1], 3), 255, dtype=np.uint8)
    width = grid.shape[1] // 3
    for j, title in enumerate(("input", "true masks", "predicted")):
        cv2.putText(header, title, (j * width + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    names = list(getattr(splits, "class_names", None) or [])
    names += [str(c) for c in range(len(names), y.shape[-1])]
    path = Path(path)
    picture = np.concatenate([header, grid, legend(grid.shape[1], names[:y.shape[-1]])], axis=0)
    with atomic_path(Path(path), expected_size=picture.nbytes) as tmp:
        if not cv2.imwrite(str(tmp), picture):
            raise OSError(f"could not write {path}")
    return path
