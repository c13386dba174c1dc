"""Model measures of a built Keras model: parameters, FLOPs, weight size and inference latency.

The names and their meaning are :mod:`archsearch.core.measures`'; the values are computed here,
from the built model, by the Keras trial runner: ``params``, ``trainable_params``, ``flops`` and
``model_size_mb`` right after the build (so a constraint on them refuses a trial before any
training), ``latency_ms`` and ``latency_batch_ms`` on the trained model, on the device it trained on.

**FLOPs** are counted analytically from each layer's type and the shapes in the model's graph, so
they are the same on every Keras backend (Keras 3 has no FLOPs count of its own).  The convention:

* one forward pass of **one example** (batch 1), in inference mode;
* a **multiply-add counts as 2 FLOPs** (so ``flops / 2`` is the multiply-add count, "MACs");
* Dense and convolutions (1D/2D/3D, grouped, strided, any padding; depthwise, separable and
  transposed): 2 x multiply-adds, plus 1 per output element for the bias, plus 1 per output
  element for a fused non-linear activation;
* pooling: the window's size per output element; global pooling: 1 per input element;
* BatchNormalization (inference): 2 per element (its scale and shift, once folded);
  LayerNormalization / GroupNormalization: 5 per element (mean, variance, normalise), plus 1 each
  for its scale and its centre;
* activations (Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax): 1 per element, whatever the
  function; Add / Subtract / Multiply / Maximum / Minimum: 1 per output element per extra input,
  Average: 1 per output element per input; Rescaling / Normalization: 2 per element;
  UpSampling: 0 (nearest) or 8 per output element (bilinear);
* EinsumDense: 2 x the product of every index's size in its equation, plus its bias and activation;
  MultiHeadAttention: its four projections (as EinsumDense), then per head and pair of positions
  2 x key_dim for the score, 1 for the softmax and 2 x value_dim for the weighted sum, plus the
  1/sqrt(key_dim) scale of the queries; Attention / AdditiveAttention likewise without projections;
* recurrent layers (SimpleRNN, GRU, LSTM), per time step: 2 x gates x units x (inputs + units) for the
  gate products, plus 1 per gate and unit each for the bias and the activation, plus the state update
  (GRU 4, LSTM 5 per unit); Bidirectional: both directions and the merge; TimeDistributed: the
  wrapped layer once per time step;
* free: Dropout (identity at inference), Concatenate, Flatten, Reshape, Permute, padding,
  cropping, Embedding lookups, the random image transforms (identity at inference) and the Input.

TensorFlow's profiler (``tf.compat.v1.profiler``, tests/test_measures.py cross-checks it) counts
the same for Dense, convolutions, biases and pooling; it counts activations as 0 and adds a few
per-channel operations to BatchNormalization.  A layer this module does not know (a custom layer,
a layer like ConvLSTM) counts 0 and is named once in a warning, never silently: give it a rule with
:func:`flops_rule`.  Nested models are walked layer by layer; a subclassed model has no graph to
walk, so its ``flops`` is unknown (absent) and said so.

**Latency** is the median of :data:`LATENCY_RUNS` timed ``predict_on_batch`` calls (Keras' compiled
predict step, as served) on zeros of the model's input shape, after :data:`WARMUP_RUNS` untimed
ones (tracing, allocation): batch 1 for ``latency_ms``, ``trainer.batch_size`` for ``latency_batch_ms``.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import keras
import numpy as np

from archsearch.core.measures import AFTER_TRAINING, BEFORE_TRAINING
from archsearch.training.augment_layers import RandAugment

log = logging.getLogger("archsearch")

WARMUP_RUNS = 3  # untimed calls first: the first traces and compiles the predict step
LATENCY_RUNS = 15  # timed calls; their median is the latency

Shape = tuple[int | None, ...]
# A rule: (layer, input shapes, output shapes), each shape without its batch dimension -> FLOPs.
FlopsRule = Callable[[Any, list[Shape], list[Shape]], float]
_RULES: dict[type, FlopsRule] = {}
_warned: set[str] = set()  # layers already named as uncounted in this process


def flops_rule(*classes: type) -> Callable[[FlopsRule], FlopsRule]:
    """Register how many FLOPs a layer class (and its subclasses) costs: ``rule(layer, ins, outs)``,
    shapes without the batch dimension.  For a custom layer the count should otherwise miss."""
    def register(rule: FlopsRule) -> FlopsRule:
        for cls in classes:
            _RULES[cls] = rule
        return rule
    return register


def _size(shape: Shape) -> int:
    return int(math.prod(int(d) for d in shape))


def _activation(layer: Any, elements: int) -> int:
    """1 per element for a layer's fused activation (``Dense(..., activation="relu")``), 0 for linear."""
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", "linear")
    return 0 if fn is None or name == "linear" else elements


def _channels(layer: Any, shape: Shape) -> int:
    return int(shape[0] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[-1])


def _bias(layer: Any, elements: int) -> int:
    return elements if getattr(layer, "use_bias", False) else 0


L = keras.layers


@flops_rule(L.Dense)
def _dense(layer, ins, outs):
    out = _size(outs[0])
    return 2 * _size(ins[0]) * int(layer.units) + _bias(layer, out) + _activation(layer, out)


@flops_rule(L.Conv1D, L.Conv2D, L.Conv3D)
def _conv(layer, ins, outs):
    out = _size(outs[0])
    groups = int(getattr(layer, "groups", 1) or 1)
    macs = math.prod(layer.kernel_size) * (_channels(layer, ins[0]) // groups) * out
    return 2 * macs + _bias(layer, out) + _activation(layer, out)


@flops_rule(L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
def _conv_transpose(layer, ins, outs):
    # every input element is multiplied by the whole kernel, once per output channel
    out = _size(outs[0])
    macs = _size(ins[0]) * math.prod(layer.kernel_size) * int(layer.filters)
    return 2 * macs + _bias(layer, out) + _activation(layer, out)


@flops_rule(L.DepthwiseConv1D, L.DepthwiseConv2D)
def _depthwise(layer, ins, outs):
    out = _size(outs[0])  # each output element: one input channel times the kernel
    return 2 * math.prod(layer.kernel_size) * out + _bias(layer, out) + _activation(layer, out)


@flops_rule(L.SeparableConv1D, L.SeparableConv2D)
def _separable(layer, ins, outs):
    out = _size(outs[0])
    positions = out // int(layer.filters)
    middle = _channels(layer, ins[0]) * int(layer.depth_multiplier)
    macs = positions * middle * (math.prod(layer.kernel_size) + int(layer.filters))
    return 2 * macs + _bias(layer, out) + _activation(layer, out)


@flops_rule(L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D,
            L.AveragePooling3D)
def _pooling(layer, ins, outs):
    return math.prod(layer.pool_size) * _size(outs[0])


@flops_rule(L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.GlobalAveragePooling1D,
            L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)
def _global_pooling(layer, ins, outs):
    return _size(ins[0])


@flops_rule(L.BatchNormalization)
def _batch_norm(layer, ins, outs):
    return 2 * _size(outs[0])


@flops_rule(L.LayerNormalization, L.GroupNormalization)
def _layer_norm(layer, ins, outs):
    per_element = 5 + bool(getattr(layer, "scale", True)) + bool(getattr(layer, "center", True))
    return per_element * _size(outs[0])


@flops_rule(L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.PReLU, L.Softmax)
def _activation_layer(layer, ins, outs):
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    return 0 if name == "linear" else _size(outs[0])


@flops_rule(L.Add, L.Subtract, L.Multiply, L.Maximum, L.Minimum)
def _elementwise(layer, ins, outs):
    return (len(ins) - 1) * _size(outs[0])


@flops_rule(L.Average)
def _average(layer, ins, outs):
    return len(ins) * _size(outs[0])


@flops_rule(L.Rescaling, L.Normalization)
def _affine(layer, ins, outs):
    return 2 * _size(outs[0])


@flops_rule(L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
def _upsampling(layer, ins, outs):
    interpolation = getattr(layer, "interpolation", "nearest")
    if interpolation == "nearest":
        return 0
    if interpolation == "bilinear":
        return 8 * _size(outs[0])  # 4 neighbours weighted: 4 multiply-adds per output element
    raise _Uncounted(f"{type(layer).__name__}(interpolation={interpolation!r})")


@flops_rule(L.EinsumDense)
def _einsum_dense(layer, ins, outs):
    sizes, output = _einsum_sizes(layer.equation, (1, *ins[0]), tuple(layer.kernel.shape))
    out = math.prod(sizes[c] for c in output)
    return 2 * math.prod(sizes.values()) + _bias_elements(layer, out) + _activation(layer, out)


def _einsum_sizes(equation: str, input_shape: Shape, kernel_shape: Shape) -> tuple[dict[str, int], str]:
    """Every index's size in ``einsum(equation, input, kernel)``, and the output's indices: the multiply-adds
    are the product of all the sizes (each index once), the output's elements the product of its own."""
    operands, output = equation.replace(" ", "").split("->")
    first, second = operands.split(",")
    if "..." in first:  # the ellipsis stands for the input's leading dimensions the equation does not name
        hidden = len(input_shape) - (len(first) - 3)
        letters = "".join([c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in equation][:hidden])
        first, output = first.replace("...", letters), output.replace("...", letters)
    sizes: dict[str, int] = {}
    for letters, shape in ((first, input_shape), (second, kernel_shape)):
        if len(letters) != len(shape):
            raise _Uncounted(f"EinsumDense {equation!r} on input shape {input_shape[1:]}")
        sizes.update({c: int(d) for c, d in zip(letters, shape)})
    return sizes, output


def _bias_elements(layer: Any, out: int) -> int:
    """EinsumDense's bias: one addition per output element when it has one."""
    return out if getattr(layer, "bias", None) is not None else 0


@flops_rule(L.MultiHeadAttention)
def _multi_head_attention(layer, ins, outs):
    """The four projections (EinsumDense, counted by their rule), then per head: scores (q.k, 2 x key_dim per
    pair), their 1/sqrt(key_dim) scale, the softmax (1 per score) and the weighted sum of values."""
    query, value = ins[0], ins[1]
    key = ins[2] if len(ins) > 2 else value
    heads, key_dim = int(layer._num_heads), int(layer._key_dim)
    value_dim = int(layer._value_dim or key_dim)
    axes = [a - 1 for a in (layer._attention_axes or range(1, len(query)))]  # without the batch axis
    pairs = math.prod(int(query[a]) for a in axes) * math.prod(int(value[a]) for a in axes)
    others = math.prod(int(d) for i, d in enumerate(query[:-1]) if i not in axes)  # axes that act as a batch
    projections = sum(_einsum_dense(dense, [shape], [(*shape[:-1], *dense.partial_output_shape[-2:])])
                      for dense, shape in ((layer._query_dense, query), (layer._key_dense, key),
                                           (layer._value_dense, value)))
    head_outputs = (*query[:-1], heads, value_dim)
    projections += _einsum_dense(layer._output_dense, [head_outputs], outs)
    attention = heads * others * (2 * pairs * key_dim + pairs + 2 * pairs * value_dim)
    scale = heads * _size(query[:-1]) * key_dim
    return projections + attention + scale


@flops_rule(L.Attention)
def _dot_attention(layer, ins, outs):
    """Luong attention: scores q.k, an optional learned scale, the softmax, the weighted sum of values."""
    (*tq, dim), (*tv, _) = ins[0], ins[1]
    pairs = _size(tuple(tq)) * _size(tuple(tv))
    return 2 * pairs * int(dim) + pairs * (2 if getattr(layer, "use_scale", False) else 1) + 2 * pairs * int(dim)


@flops_rule(L.AdditiveAttention)
def _additive_attention(layer, ins, outs):
    """Bahdanau attention: per pair of positions, q + k, tanh and a scaled sum over features; then the softmax
    and the weighted sum of values."""
    (*tq, dim), (*tv, _) = ins[0], ins[1]
    pairs = _size(tuple(tq)) * _size(tuple(tv))
    return 4 * pairs * int(dim) + pairs + 2 * pairs * int(dim)


# Per time step, with u units and i input features: the gate matrix products 2 x gates x u x (i + u), then
# per unit each gate's bias, activation and the element-wise state update.
_RECURRENT = {  # class name: (gates, element-wise operations per unit besides the gates' activations)
    "SimpleRNN": (1, 0),
    "GRU": (3, 4),   # the reset gate's product, then h = z * h + (1 - z) * candidate
    "LSTM": (4, 5),  # c = f * c + i * g, h = o * tanh(c) (tanh(c) included)
}


@flops_rule(L.SimpleRNN, L.GRU, L.LSTM)
def _recurrent(layer, ins, outs):
    steps, features = int(ins[0][0]), int(ins[0][-1])
    units = int(layer.units)
    gates, elementwise = next(v for k, v in _RECURRENT.items() if isinstance(layer, getattr(L, k)))
    biases = gates * units * (2 if getattr(layer, "reset_after", False) else 1) if layer.use_bias else 0
    return steps * (2 * gates * units * (features + units) + biases + gates * units + elementwise * units)


@flops_rule(L.Bidirectional)
def _bidirectional(layer, ins, outs):
    both = _rule_for(layer.forward_layer)(layer.forward_layer, ins, outs) + \
        _rule_for(layer.backward_layer)(layer.backward_layer, ins, outs)
    merged = _size(outs[0]) if outs else 0
    return both + {"concat": 0, "sum": merged, "mul": merged, "ave": 2 * merged}.get(layer.merge_mode, 0)


@flops_rule(L.TimeDistributed)
def _time_distributed(layer, ins, outs):
    rule = _rule_for(layer.layer)
    if rule is None:
        raise _Uncounted(f"TimeDistributed({type(layer.layer).__name__})")
    return int(ins[0][0]) * rule(layer.layer, [ins[0][1:]], [outs[0][1:]])


# Random image transforms change training batches only: at inference they pass their input through.
_AUGMENTATIONS = tuple(getattr(L, name) for name in (
    "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast", "RandomBrightness",
    "RandomColorDegeneration", "RandomColorJitter", "RandomElasticTransform", "RandomErasing",
    "RandomGaussianBlur", "RandomGrayscale", "RandomHue", "RandomInvert", "RandomPerspective",
    "RandomPosterization", "RandomSaturation", "RandomSharpness", "RandomShear") if hasattr(L, name))


@flops_rule(*_AUGMENTATIONS, RandAugment)
def _augmentation(layer, ins, outs):
    return 0


@flops_rule(L.InputLayer, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
            L.GaussianDropout, L.GaussianNoise, L.AlphaDropout, L.ActivityRegularization, L.Concatenate,
            L.Flatten, L.Reshape, L.Permute, L.RepeatVector, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
            L.Cropping1D, L.Cropping2D, L.Cropping3D, L.Embedding, L.Identity, L.Masking)
def _free(layer, ins, outs):
    return 0


class _Uncounted(Exception):
    """A layer the rules cannot count; the message names it."""


def _rule_for(layer: Any) -> FlopsRule | None:
    for cls in type(layer).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


def _graph(model: Any) -> Any:
    """The functional graph of a model (a Sequential's own), or None for a subclassed model."""
    if hasattr(model, "_nodes_by_depth"):
        return model
    inner = getattr(model, "_functional", None)
    return inner if inner is not None and hasattr(inner, "_nodes_by_depth") else None


def _shapes(tensors: Iterable[Any]) -> list[Shape]:
    return [tuple(t.shape)[1:] for t in tensors if hasattr(t, "shape")]


def _count(model: Any, uncounted: list[str]) -> int:
    graph = _graph(model)
    if graph is None:
        raise _Uncounted(f"{type(model).__name__} (a subclassed model has no graph to walk)")
    total = 0
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input:
                continue
            try:
                total += _count_node(op, node, uncounted)
            except _Uncounted as exc:
                uncounted.append(str(exc))
    return total


def _count_node(op: Any, node: Any, uncounted: list[str]) -> int:
    if isinstance(op, keras.Model) and _rule_for(op) is None:
        return _count(op, uncounted)  # a nested model: its own layers, with its own graph's shapes
    rule = _rule_for(op)
    if rule is None:
        kind = "keras.ops." if not isinstance(op, keras.layers.Layer) else ""
        raise _Uncounted(f"{kind}{type(op).__name__}")
    ins, outs = _shapes(node.input_tensors), _shapes(node.outputs)
    if len(ins) == 1 and len(outs) == 1 and None in outs[0] and None not in ins[0]:
        outs = [_output_shape(op, ins[0], outs[0])]  # EinsumDense(output_shape=(None, 64)) keeps a None
    if any(d is None for shape in (*ins, *outs) for d in shape):
        raise _Uncounted(f"{type(op).__name__} {op.name!r} (its shapes {ins} are not fully known)")
    try:
        return int(rule(op, ins, outs))
    except _Uncounted:
        raise
    except (AttributeError, TypeError, ValueError, ZeroDivisionError) as exc:  # a subclass the rule does not fit
        raise _Uncounted(f"{type(op).__name__} {op.name!r} ({type(exc).__name__}: {exc})") from None


def _output_shape(op: Any, given: Shape, recorded: Shape) -> Shape:
    """The layer's output shape for a fully known input, where the graph recorded an unknown dimension."""
    try:
        if isinstance(op, L.EinsumDense):  # its compute_output_shape keeps the None too
            sizes, output = _einsum_sizes(op.equation, (1, *given), tuple(op.kernel.shape))
            return tuple(sizes[c] for c in output)[1:]
        shape = tuple(op.compute_output_shape((1, *given)))[1:]
    except Exception:  # noqa: BLE001 - a layer without a usable compute_output_shape: keep what was recorded
        return recorded
    return shape if len(shape) == len(recorded) and all(isinstance(d, int) for d in shape) else recorded


def count_flops(model: Any) -> int | None:
    """FLOPs of one forward pass of one example (see the module's convention); None when the model has
    no graph to walk (a subclassed model).  Uncounted layers are named once in a warning."""
    uncounted: list[str] = []
    try:
        total = _count(model, uncounted)
    except _Uncounted as exc:
        _warn_once([str(exc)], "flops is unknown for", "build the model with the functional API or Sequential "
                   "to have it counted")
        return None
    _warn_once(uncounted, "flops counts 0 for", "archsearch has no FLOPs rule for them: give one with "
               "archsearch.training.measures.flops_rule")
    return total


def _warn_once(names: Sequence[str], what: str, why: str) -> None:
    """Name what a measure leaves out, once per process: never silently wrong, never a wall of repeats."""
    new = [n for n in dict.fromkeys(names) if n not in _warned]
    if new:
        _warned.update(new)
        log.warning("%s %s (%s)", what, ", ".join(new), why)


# ---------------------------------------------------------------- parameters and size
def is_built(model: Any) -> bool:
    """Whether the model has its weights (a subclassed model gets them on its first call)."""
    try:
        model.count_params()
    except ValueError:
        return False
    return bool(getattr(model, "built", True))


def _bytes_per_value(dtype: Any) -> float:
    name = keras.backend.standardize_dtype(getattr(dtype, "name", dtype))
    if name == "bool":
        return 1.0
    bits = re.search(r"(\d+)$", name)
    return int(bits.group(1)) / 8 if bits else 4.0


def model_size_mb(model: Any) -> float:
    """The weights' size in MiB: every value (trainable or not) times its dtype's bytes, / 2**20."""
    return sum(_size(tuple(w.shape)) * _bytes_per_value(w.dtype) for w in model.weights) / 2**20


def measure_before_training(model: Any, names: Iterable[str]) -> dict[str, float]:
    """The before-training measures among ``names`` of a built model ({} when it has no weights yet);
    ``flops`` is left out when it cannot be counted (said in a warning)."""
    wanted = [n for n in names if n in BEFORE_TRAINING]
    if not wanted or not is_built(model):
        return {}
    values: dict[str, float] = {}
    for name in wanted:
        if name == "params":
            values[name] = float(model.count_params())
        elif name == "trainable_params":
            values[name] = float(sum(_size(tuple(w.shape)) for w in model.trainable_weights))
        elif name == "model_size_mb":
            values[name] = float(model_size_mb(model))
        elif name == "flops":
            flops = count_flops(model)
            if flops is not None:
                values[name] = float(flops)
    return values


# ---------------------------------------------------------------- latency
def example_inputs(model: Any, batch_size: int) -> Any:
    """Zeros of the model's input structure with ``batch_size`` rows; None when its shape is unknown."""
    def zeros(shape: Sequence[Any], dtype: Any = "float32") -> np.ndarray | None:
        dims = tuple(shape)[1:]
        if any(d is None for d in dims):
            return None
        return np.zeros((int(batch_size), *(int(d) for d in dims)), dtype=keras.backend.standardize_dtype(dtype))

    try:
        structure = model.input  # a functional or Sequential model's inputs, in their structure
    except (AttributeError, ValueError):
        shapes = getattr(model, "_build_shapes_dict", None) or {}  # a subclassed model: its first call's
        first = next(iter(shapes.values()), None)
        return None if first is None else zeros(first)
    arrays = keras.tree.map_structure(lambda t: zeros(t.shape, t.dtype), structure)
    return None if any(a is None for a in keras.tree.flatten(arrays)) else arrays


def latency_ms(model: Any, batch_size: int = 1, runs: int = LATENCY_RUNS, warmup: int = WARMUP_RUNS) -> float | None:
    """Median milliseconds of one ``predict_on_batch`` of ``batch_size`` examples, after ``warmup`` calls;
    None when the model's input shape is unknown (said in a warning)."""
    x = example_inputs(model, batch_size)
    if x is None:
        _warn_once([type(model).__name__], "latency is unknown for",
                   "its input shape is not fully known: give the model an Input with every dimension but the batch")
        return None
    for _ in range(max(0, warmup)):
        model.predict_on_batch(x)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        keras.tree.map_structure(np.asarray, model.predict_on_batch(x))  # on the host: the device has finished
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def measure_after_training(model: Any, names: Iterable[str], batch_size: int | None) -> dict[str, float]:
    """The after-training measures among ``names`` (latency) of the trained ``model``, where it trained.

    A measure that cannot be taken is left out with a warning saying why, and the trial it belongs to
    keeps its training: a constraint or an objective that needs it then fails that trial by name.
    """
    values: dict[str, float] = {}
    for name in names:
        if name not in AFTER_TRAINING:
            continue
        batch = 1 if name == "latency_ms" else int(batch_size or 32)
        try:
            measured = latency_ms(model, batch)
        except Exception as exc:  # noqa: BLE001 - any failure of the timed calls means the same thing
            log.warning("%s could not be measured: %s: %s", name, type(exc).__name__, str(exc)[:300])
            continue
        if measured is not None:
            values[name] = float(measured)
    return values
