"""Checks on the loaded data, run by ``load_data`` before any training.

Bad data otherwise fails late or silently: one NaN pixel turns every weight
into NaN and the NaN model is still exported as best; 0..255 floats saturate
the activations; one stray label 999 makes a 1000-way softmax.  Each check
raises one :class:`DataError` naming the split, the value and the fix.

The checks are whole-array numpy reductions (min, max, unique), so they cost a
few passes over the data; the per-sample pass that counts bad samples only
runs once something is known to be wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from archsearch.datasets.base import DataSplits
from archsearch.errors import DataError

# Images and masks may overshoot 0..1 by this much (resizing, rounding) without being refused.
TOLERANCE = 0.01
REMAP = "remap the labels (e.g. y = numpy.unique(y, return_inverse=True)[1])"


def check_splits(splits: DataSplits) -> None:
    """Refuse data that would train garbage: non-finite values, unscaled images, broken labels."""
    named = [("training", splits.x_train, splits.y_train), ("validation", splits.x_val, splits.y_val)]
    if splits.has_test:
        named.append(("test", splits.x_test, splits.y_test))
    for split, x, y in named:
        x_range = check_finite(splits.name, f"{split} samples", x, "x")
        if x.ndim >= 3:  # images (n, h, w[, c]); flat features (n, d) may have any finite range
            _check_image_range(splits.name, split, *x_range)
        y_range = check_finite(splits.name, f"{split} samples", y, "y")
        if splits.task == "segmentation":
            _check_mask_range(splits.name, split, *y_range)
        else:
            _check_label_values(splits.name, split, y, *y_range)
    if splits.task == "classification":
        _check_classes(splits)


def check_finite(dataset: str, samples: str, a: np.ndarray, field: str | None = None) -> tuple[float, float]:
    """``a``'s (min, max); a DataError counting the samples with NaN or Inf if there are any.

    NaN and Inf propagate into min and max, so two reductions tell whether a
    float array is clean; only then is it scanned sample by sample.
    ``samples`` names them in the message ("training samples", "samples in array 'x'").
    """
    if a.size == 0 or a.dtype.kind not in "biufc":
        return 0.0, 0.0
    lo, hi = a.min(), a.max()
    if a.dtype.kind in "fc" and not (np.isfinite(lo) and np.isfinite(hi)):
        bad = np.flatnonzero(~np.isfinite(a.reshape(len(a), -1)).all(axis=1))
        where = f" in {field}" if field else ""
        raise DataError(
            f"data '{dataset}': {len(bad)} of {len(a)} {samples} contain NaN or Inf values{where} "
            f"(first at index {bad[0]}); clean or drop them"
        )
    return float(np.real(lo)), float(np.real(hi))


def _check_image_range(dataset: str, split: str, lo: float, hi: float) -> None:
    """Images must be 0..1 floats; 0..255 floats are the usual slip (uint8 is scaled on loading)."""
    if lo >= -TOLERANCE and hi <= 1.0 + TOLERANCE:
        return
    if lo >= 0.0 and hi <= 255.0:
        raise DataError(
            f"data '{dataset}': the {split} images hold values up to {hi:g}, but float images must be "
            "scaled to 0..1; these look like 0..255 pixel values: divide them by 255 before saving "
            "(x / 255.0), or store them as uint8 (scaled to 0..1 on loading)"
        )
    raise DataError(
        f"data '{dataset}': the {split} images hold values from {lo:g} to {hi:g}, but float images must be "
        "scaled to 0..1; rescale them before saving (e.g. (x - x.min()) / (x.max() - x.min())), "
        "or store uint8 0..255 images"
    )


def _check_mask_range(dataset: str, split: str, lo: float, hi: float) -> None:
    """Masks are per-class probabilities: values outside 0..1 break the losses and IoU."""
    if lo >= -TOLERANCE and hi <= 1.0 + TOLERANCE:
        return
    raise DataError(
        f"data '{dataset}': the {split} masks hold values from {lo:g} to {hi:g}, but masks must be in 0..1 "
        "(one channel per class); divide 0..255 masks by 255 before saving, or store class ids in "
        "single-channel masks (0 = background, 1..K)"
    )


def _check_label_values(dataset: str, split: str, y: np.ndarray, lo: float, hi: float) -> None:
    """Class ids are whole numbers >= 0 (sparse categorical losses index the output by them)."""
    if y.ndim != 1:
        raise DataError(f"data '{dataset}': the {split} labels have shape {y.shape}; classification "
                        "needs one integer class id per sample, shape (n,)")
    if y.dtype.kind not in "biu":
        fractional = np.flatnonzero(np.mod(y, 1) != 0)
        if len(fractional):
            i = fractional[0]
            raise DataError(
                f"data '{dataset}': {len(fractional)} of {len(y)} {split} labels are not whole numbers "
                f"(e.g. {float(y[i]):g} at index {i}); classification needs integer class ids 0..K-1"
            )
    if lo < 0:
        count = int(np.count_nonzero(y < 0))
        raise DataError(
            f"data '{dataset}': {count} of {len(y)} {split} labels are negative class ids (min {lo:g}); "
            f"class ids must be 0..K-1: {REMAP}"
        )


def _check_classes(splits: DataSplits) -> None:
    """At least 2 training classes, ids 0..K-1 without a stray huge id, no validation-only classes."""
    name = splits.name
    train_ids = np.unique(splits.y_train.astype(np.int64))
    val_ids, val_counts = np.unique(splits.y_val.astype(np.int64), return_counts=True)
    if len(train_ids) < 2:
        raise DataError(
            f"data '{name}': all {len(splits.y_train)} training samples have class "
            f"{_class(splits, int(train_ids[0]))}; classification needs at least 2 classes in the "
            "training labels (add samples of other classes)"
        )

    ids = np.union1d(train_ids, val_ids)
    top, below = int(ids[-1]), int(ids[-2])
    if top + 1 > 2 * len(ids) and top - below >= 2:
        count = int(np.count_nonzero(splits.y_train == top) + np.count_nonzero(splits.y_val == top))
        raise DataError(
            f"data '{name}': class id {top} ({_samples(count)}) is far above the other class ids "
            f"({_ids(ids[:-1])}): it would make a {top + 1}-way output for {len(ids)} classes; "
            f"class ids must be 0..K-1: {REMAP}, or drop the stray samples"
        )
    if splits.has_test and int(splits.y_test.max()) >= splits.num_classes:
        raise DataError(
            f"data '{name}': test class id {int(splits.y_test.max())} is out of range for the {splits.num_classes} "
            f"classes of the dataset; class ids must be 0..{splits.num_classes - 1}"
        )
    if top >= splits.num_classes:
        raise DataError(
            f"data '{name}': class id {top} is out of range for the {splits.num_classes} classes of the "
            f"dataset; class ids must be 0..{splits.num_classes - 1}"
        )

    unseen = ~np.isin(val_ids, train_ids)
    if unseen.any():
        listed = [_class(splits, int(i), int(c)) for i, c in zip(val_ids[unseen], val_counts[unseen])]
        more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
        noun, them = ("a class", "it") if len(listed) == 1 else (f"{len(listed)} classes", "them")
        raise DataError(
            f"data '{name}': the validation labels hold {noun} never seen in the training labels: "
            f"{', '.join(listed[:5])}{more}; a model cannot learn a class it never sees: add training "
            f"samples of {them} or drop {them} from the validation data (with a random split, use more "
            "samples of each class)"
        )


def _class(splits: DataSplits, class_id: int, count: int | None = None) -> str:
    """``3``, ``3 (2 samples)``, or ``'circle' (id 0, 2 samples)`` where the dataset names its classes."""
    names = splits.class_names
    details = [] if count is None else [_samples(count)]
    if 0 <= class_id < len(names) and names[class_id] != str(class_id):
        return f"{names[class_id]!r} ({', '.join([f'id {class_id}', *details])})"
    return f"{class_id} ({details[0]})" if details else str(class_id)


def _samples(count: int) -> str:
    return f"{count} sample" + ("" if count == 1 else "s")


def _ids(ids: np.ndarray) -> str:
    """``0..2`` for a run of ids, else the first few listed."""
    values = [int(i) for i in ids]
    if len(values) > 2 and values[-1] - values[0] == len(values) - 1:
        return f"{values[0]}..{values[-1]}"
    return ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")


# --------------------------------------------------------------------------- class-id masks


@dataclass(frozen=True)
class MaskIds:
    """How single-channel masks of class ids become mask channels 1..``classes``.

    ``binary`` is the one object value of a two-value mask (255 from image tools, or 1), read as
    class 1; None when the pixel values are the class ids themselves.
    """

    classes: int
    binary: int | None = None

    def apply(self, mask: np.ndarray) -> np.ndarray:
        """Class ids 0..classes of one mask (0 = background)."""
        if self.binary is None:
            return mask.astype(np.int64)
        return (mask == self.binary).astype(np.int64)


def mask_class_ids(label: str, values: Mapping[str, np.ndarray], *, declared: int | None = None,
                   setting: str | None = None, like: MaskIds | None = None, noun: str = "mask") -> MaskIds:
    """Read the class ids of single-channel masks, refusing ids that would build a wrong model.

    ``values`` holds each mask's (or array's) distinct pixel values by its name.  A mask with only
    0 and one other value is binary (a 0/255 PNG is one class, not 255); otherwise the ids must be
    1..K without gaps, since every id up to the largest becomes an output channel: a stray 200
    would make a 200-class model with 199 empty channels.  ``declared`` (from ``setting``) is the
    number of classes the config names: ids up to it may then be absent.  ``like`` is the training
    masks' reading, which the test masks must follow.  ``label`` starts each message ("data.path");
    ``noun`` names what ``values`` are keyed by ("mask" files, "array"s).
    """
    ids = np.unique(np.concatenate([np.asarray(v).ravel() for v in values.values()]).astype(np.int64))
    if ids.size and ids[0] < 0:
        raise DataError(f"{label}: {_holding(noun, values, int(ids[0]))} negative class id {int(ids[0])}; "
                        "use 0 = background and 1..K for the classes")
    objects = [int(i) for i in ids if i != 0]
    if like is not None:
        return _follow(label, noun, values, objects, like)
    if not objects and declared is None:
        raise DataError(f"{label}: every mask is empty (all pixels 0 = background); class ids 1..K mark the objects")
    if len(objects) == 1 and (objects[0] > (declared or 0)) and (declared is None or objects[0] == 255):
        return MaskIds(1, binary=objects[0])
    if declared is not None:
        return MaskIds(declared)
    top = objects[-1]
    hint = f"; or set {setting}={top} if some classes are absent from these masks" if setting else ""
    if len(objects) >= 2 and top > 2 * len(objects) and top - objects[-2] >= 2:
        others = _ids(np.array(objects[:-1]))
        raise DataError(
            f"{label}: {_holding(noun, values, top)} class id {top}, far above the other ids ({others}): "
            f"it would make {top} mask channels for {len(objects)} classes; mask class ids must be 1..K "
            f"(0 = background): fix the stray pixels or remap the ids{hint}"
        )
    missing = sorted(set(range(1, top + 1)) - set(objects))
    if missing:
        raise DataError(
            f"{label}: the masks hold class ids {_ids(np.array(objects))} but never {_ids(np.array(missing))}: every "
            f"id up to {top} would be an output channel, {len(missing)} of them always empty; mask class ids "
            f"must be 1..K without gaps (0 = background): remap them (e.g. with numpy.unique(mask, "
            f"return_inverse=True)){hint}"
        )
    return MaskIds(top)


def _follow(label: str, noun: str, values: Mapping[str, np.ndarray], objects: list[int], like: MaskIds) -> MaskIds:
    """The test masks read as the training masks were: the same binary value, no id above theirs."""
    allowed = {like.binary} if like.binary is not None else set(range(1, like.classes + 1))
    stray = [i for i in objects if i not in allowed]
    if stray:
        kind = (f"binary masks of 0 and {like.binary}" if like.binary is not None
                else f"class ids 1..{like.classes}")
        raise DataError(f"{label}: {_holding(noun, values, stray[0])} value {stray[0]}, but the training masks are "
                        f"{kind}; give the test masks the training masks' classes")
    return like


def _holding(noun: str, values: Mapping[str, np.ndarray], value: int) -> str:
    """``mask a.png holds`` / ``masks a.png, b.png and 3 more hold``: where a value occurs."""
    names = [name for name, v in values.items() if np.any(np.asarray(v) == value)]
    if len(names) == 1:
        return f"{noun} {names[0]} holds"
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"{noun}s {', '.join(names[:3])}{more} hold"
