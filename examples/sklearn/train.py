"""A scikit-learn program tuned by archsearch: a neural network on the digits data set, scored by
cross-validation, the score printed as ``accuracy=V`` (read from stdout with no code change).

The data is scikit-learn's own ``load_digits`` (1,797 8x8 images, bundled: no download). The model is a
standardising step and an ``MLPClassifier`` trained with Adam; its arguments are the search's values:

    python examples/sklearn/train.py --learning_rate_init=0.01 --alpha=1e-4 --beta_1=0.9 \
        --hidden_units=64 --activation=relu

examples/sklearn/hptuning_config.yaml searches them with the cloud service's older spec.
"""

from __future__ import annotations

import argparse
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def whole_number(text: str) -> int:
    """An int, also written as a float ("16.0"): the older spec's DISCRETE values are numbers, not ints."""
    value = float(text)
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning_rate_init", type=float, default=1e-3, help="Adam's step size")
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    parser.add_argument("--beta_1", type=float, default=0.9, help="Adam's first-moment decay, in [0, 1)")
    parser.add_argument("--hidden_units", type=whole_number, default=32, help="units of the one hidden layer")
    parser.add_argument("--activation", choices=["relu", "tanh", "logistic"], default="relu")
    parser.add_argument("--max_iter", type=int, default=30, help="training epochs per fold")
    parser.add_argument("--folds", type=int, default=3, help="cross-validation folds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    x, y = load_digits(return_X_y=True)
    model = make_pipeline(StandardScaler(), MLPClassifier(
        hidden_layer_sizes=(args.hidden_units,), activation=args.activation, solver="adam",
        learning_rate_init=args.learning_rate_init, alpha=args.alpha, beta_1=args.beta_1,
        max_iter=args.max_iter, random_state=0))
    with warnings.catch_warnings():
        # A short budget of epochs is the point here: "did not converge" on every fold is noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(model, x, y, cv=StratifiedKFold(args.folds, shuffle=True, random_state=0))
    # The objective (hyperparameterMetricTag: accuracy) and its spread over the folds, as `name=value` pairs.
    print(f"accuracy={scores.mean():.6f} accuracy_std={scores.std():.6f}", flush=True)


if __name__ == "__main__":
    main()
