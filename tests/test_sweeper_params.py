"""The sweeper's search space from Hydra's sweep grammar (archsearch/sweeper/params.py): each form maps to the
archsearch parameter the Optuna sweeper's mapping implies, with exactly Hydra's values for a range; one trial's
values come back through Hydra's own parser (and ``hydra.compose``) as the same values and types; every form
archsearch cannot search is one ConfigError naming the key."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Quote, QuotedString

from archsearch.errors import ConfigError
from archsearch.sweeper.params import SweepSpace, format_value, space_from_params

PARSER = OverridesParser.create()

# The Optuna sweeper's documented example (website/docs/plugins/optuna_sweeper.md, "sphere"), as written there.
SPHERE = {"x": "range(-5.5,5.5,step=0.5)", "y": "choice(-5,0,5)"}

# A choice of strings that a careless formatter would mangle: spaces, commas, quotes, '=', ones that read as
# numbers, booleans or null, an empty one, a Hydra function call and an interpolation-looking one.
AWKWARD = ["a b", "a,b", "it's", 'say "hi"', "x=y", "1", "1e-05", "true", "null", "", " lead", "f(1)", "[1]",
           "back\\slash", "é"]
AWKWARD_CHOICE = "choice(" + ", ".join(QuotedString(s, Quote.double).with_quotes() for s in AWKWARD) + ")"


def _parse(override: str):
    """What Hydra's parser makes of ``key=value``: the value, as a job receives it."""
    parsed = PARSER.parse_overrides([override])[0]
    assert not parsed.is_sweep_override(), override
    return parsed.value()


def _parameter(sweep: SweepSpace, name: str):
    return sweep.space.space[name]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b and type(a) is type(b)


def test_the_optuna_sweepers_sphere_example_maps_to_hydras_values():
    sweep = space_from_params(SPHERE)
    x, y = _parameter(sweep, "x"), _parameter(sweep, "y")
    assert (x.type_name, x.min_value, x.max_value, x.step) == ("float", -5.5, 5.5, 0.5)
    hydras_x = list(PARSER.parse_overrides([f"x={SPHERE['x']}"])[0].sweep_iterator())
    assert x.values == [*hydras_x, 5.5] and len(x.values) == 23  # 5.5 included, as the Optuna sweeper reads it
    assert (y.type_name, y.values, y.ordered) == ("choice", [-5, 0, 5], True)
    assert all(type(v) is int for v in y.values)
    assert sweep.fixed == [] and sweep.keys == {"x": "x", "y": "y"}


@pytest.mark.parametrize("arguments, expected", [
    # the docs' command-line variations of the same example; the command line wins over the config
    (["x=interval(-5.0, 5.0)", "y=interval(0, 10)"], {"x": ("float", -5.0, 5.0), "y": ("float", 0.0, 10.0)}),
    (["x=int(interval(-5.0, 5.0))", "y=tag(log, interval(1, 10))"], {"x": ("int", -5, 5), "y": ("float", 1.0, 10.0)}),
    (["x=range(-5.0, 5.0)", "y=shuffle(range(-5, 5))"], {"x": ("float", -5.0, 5.0), "y": ("choice", -5, 4)}),
    (["x=choice(-5.0, 0.0, 5.0)", "y=choice(0, 1, 2, 3, 4, 5)"], {"x": ("choice", -5.0, 5.0), "y": ("choice", 0, 5)}),
])
def test_the_sphere_examples_command_line_variations(arguments, expected):
    sweep = space_from_params(SPHERE, arguments)
    for name, (type_name, low, high) in expected.items():
        parameter = _parameter(sweep, name)
        values = parameter.values if type_name == "choice" else [parameter.min_value, parameter.max_value]
        assert (parameter.type_name, min(values), max(values)) == (type_name, low, high)
        assert all(type(v) is type(low) for v in values)
    assert _parameter(space_from_params(SPHERE, ["y=tag(log, interval(1, 10))"]), "y").sampling == "log"


@pytest.mark.parametrize("text", ["range(2, 6)", "range(5)", "range(0, 10, 3)", "range(5, 0, -2)",
                                  "range(-5.5, 5.5, 0.5)", "range(0, 1, 0.25)", "range(1.0, 0.0, -0.25)",
                                  "range(0, 2.5)", "range(3, 4)"])
def test_a_range_holds_the_optuna_sweepers_values(text):
    """The Optuna sweeper includes the stop where Hydra's own enumeration excludes it: Hydra's values, plus the
    stop when it lies on the step's grid."""
    parameter = _parameter(space_from_params({"k": text}), "k")
    sweep = PARSER.parse_overrides([f"k={text}"])[0].value()
    hydras = list(PARSER.parse_overrides([f"k={text}"])[0].sweep_iterator())
    on_grid = abs(((sweep.stop - sweep.start) / sweep.step) - round((sweep.stop - sweep.start) / sweep.step)) < 1e-9
    expected = hydras + ([hydras[0] + len(hydras) * sweep.step] if on_grid else [])
    assert sorted(parameter.values) == pytest.approx(sorted(expected))
    assert {type(v) for v in parameter.values} == {type(v) for v in hydras}


def test_a_float_range_with_an_inexact_step_keeps_its_values_within_rounding():
    parameter = _parameter(space_from_params({"k": "range(0, 1, 0.1)"}), "k")
    hydras = list(PARSER.parse_overrides(["k=range(0, 1, 0.1)"])[0].sweep_iterator())
    assert parameter.values == pytest.approx([*hydras, 1.0]) and len(parameter.values) == 11


@pytest.mark.parametrize("text, type_name, fields", [
    ("interval(0.1, 0.9)", "float", {"min": 0.1, "max": 0.9}),
    ("interval(1, 10)", "float", {"min": 1.0, "max": 10.0}),  # Hydra reads an interval's ends as floats
    ("int(interval(1, 10))", "int", {"min": 1, "max": 10}),  # both ends included, as Optuna's sweeper
    ("tag(int, interval(1, 10))", "int", {"min": 1, "max": 10}),
    ("tag(log, interval(1e-4, 1e-1))", "float", {"min": 1e-4, "max": 0.1, "sampling": "log"}),
    ("tag(log, int(interval(16, 256)))", "int", {"min": 16, "max": 256, "sampling": "log"}),
    ("tag(int, log, interval(16, 256))", "int", {"min": 16, "max": 256, "sampling": "log"}),
    ("range(2, 6)", "int", {"min": 2, "max": 6}),  # the stop included, as the Optuna sweeper reads it
    ("range(0, 10, 3)", "int", {"min": 0, "max": 9, "step": 3}),
    ("range(0.5, 2.0, 0.5)", "float", {"min": 0.5, "max": 2.0, "step": 0.5}),
    ("shuffle(range(3))", "choice", {"values": [0, 1, 2], "ordered": False}),
    ("choice(relu, gelu)", "choice", {"values": ["relu", "gelu"]}),
    ("relu,gelu", "choice", {"values": ["relu", "gelu"]}),
    ("shuffle(choice(1, 2))", "choice", {"values": [1, 2], "ordered": False}),
    ("choice(1, 2.5)", "choice", {"values": [1, 2.5]}),
    ("choice(true, false)", "choice", {"values": [True, False]}),
    ("choice('1', '2')", "choice", {"values": ["1", "2"]}),
    ("choice(relu, 1)", "choice", {"values": ["relu", "1"], "ordered": False}),  # as Hydra text
    ("1,null", "choice", {"values": ["1", "null"], "ordered": False}),
    ("choice([1,2], {a:1})", "choice", {"values": ["[1,2]", "{a:1}"], "ordered": False}),
])
def test_each_grammar_form_maps_to_one_parameter(text, type_name, fields):
    parameter = _parameter(space_from_params({"k": text}), "k")
    assert parameter.type_name == type_name
    described = _described(parameter)
    assert all(_same(described[k], v) for k, v in fields.items()), (described, fields)
    if type_name == "choice":  # numbers stay numbers, strings strings
        assert [type(v) for v in parameter.values] == [type(v) for v in fields["values"]]


def _described(parameter) -> dict:
    if parameter.type_name == "choice":
        return {"values": parameter.values, "ordered": parameter.ordered}
    return {"min": parameter.min_value, "max": parameter.max_value, "step": parameter.step,
            "sampling": parameter.sampling}


def test_plain_values_and_deletions_are_fixed_overrides_for_every_job():
    sweep = space_from_params({"db": "mysql", "n": None, "k": 3, "l": [1, "a b"], "lr": "choice(1, 2)"},
                              ["~trainer.logger", "+extra=x"])
    assert sweep.fixed == ["db=mysql", "n=null", "k=3", "l=[1,'a b']", "~trainer.logger", "+extra=x"]
    assert [_parse(f) for f in sweep.fixed[:4]] == ["mysql", None, 3, [1, "a b"]]
    assert list(sweep.space.space.keys()) == ["lr"]
    assert sweep.overrides({"lr": 2}) == [*sweep.fixed, "lr=2"]


def test_params_may_come_as_omegaconf_nodes():
    from omegaconf import OmegaConf

    params = OmegaConf.create({"x": "range(-5.5,5.5,step=0.5)", "l": [1, "a b"], "d": {"a": 1}, "n": None})
    sweep = space_from_params(params)
    assert sweep.fixed == ["l=[1,'a b']", "d={a:1}", "n=null"]
    assert [_parse(f) for f in sweep.fixed] == [[1, "a b"], {"a": 1}, None]
    assert _parameter(sweep, "x").values == _parameter(space_from_params(SPHERE), "x").values


def test_the_command_line_wins_over_the_config():
    assert space_from_params({"lr": "choice(1, 2)"}, ["lr=3"]).fixed == ["lr=3"]
    assert len(space_from_params({"lr": "choice(1, 2)"}, ["lr=3"]).space) == 0
    assert _parameter(space_from_params({"lr": "3"}, ["lr=interval(0, 1)"]), "lr").type_name == "float"


def test_a_new_key_keeps_hydras_prefix_in_the_override_and_not_in_the_name():
    sweep = space_from_params({"+model.extra": "choice(1, 2)", "++model.lr": "interval(0.1, 0.2)", "db@backup": "a,b"})
    assert list(sweep.space.space.keys()) == ["model.extra", "model.lr", "db@backup"]
    assert sweep.overrides({"model.extra": 2, "model.lr": 0.15, "db@backup": "b"}) == \
        ["+model.extra=2", "++model.lr=0.15", "db@backup=b"]


def test_overrides_leave_out_a_tuners_own_values_and_refuse_a_missing_one():
    sweep = space_from_params(SPHERE)
    assert sweep.overrides({"x": 0.5, "y": 0, "tuner/epochs": 3}) == ["x=0.5", "y=0"]
    with pytest.raises(KeyError, match="y"):
        sweep.overrides({"x": 0.5})


@pytest.mark.parametrize("value", [*AWKWARD, 1e-05, 0.1, 5.0, -0.0, 1e20, 2.5e-300, float("inf"), float("-inf"),
                                   float("nan"), 0, -7, 10**18, True, False, None, np.int64(3), np.float64(0.25),
                                   np.bool_(True)])
def test_a_value_survives_hydras_parser(value):
    back = _parse(f"k={format_value(value)}")
    expected = value.item() if isinstance(value, np.generic) else value
    assert _same(back, expected), (value, format_value(value), back)


def test_every_value_a_space_produces_comes_back_with_its_type():
    mixed = {"relu": "relu", "1": 1, "2.5": 2.5, "null": None, "[1,2]": [1, 2], "'3'": "3"}  # Hydra text -> value
    params = {"model.lr": "tag(log, interval(1e-5, 1e-1))", "model.depth": "range(2, 6)",
              "model.width": "range(16, 80, 16)", "model.drop": "range(0.0, 0.5, 0.1)",
              "model.units": "tag(log, int(interval(8, 512)))", "model.act": "choice(relu, gelu)",
              "model.name": AWKWARD_CHOICE, "model.flag": "choice(true, false)", "model.mix": ",".join(mixed),
              "+model.extra": "choice(1, 2.5)"}
    sweep = space_from_params(params)
    rng = np.random.default_rng(0)
    checked = set()
    for values in [*(sweep.space.sample(rng) for _ in range(40)), *_every_choice(sweep)]:
        for override in sweep.overrides(values):
            name = override.split("=", 1)[0].lstrip("+")
            expected = mixed[values[name]] if name == "model.mix" else values[name]
            assert _same(_parse(override), expected), (override, expected)
            checked.add((name, repr(values[name])))
    assert {v for n, v in checked if n == "model.name"} == {repr(s) for s in AWKWARD}
    assert {v for n, v in checked if n == "model.mix"} == {repr(s) for s in mixed}


def _every_choice(sweep: SweepSpace):
    """One set of values per choice value, so that every listed value is written and read back."""
    base = sweep.space.sample(np.random.default_rng(1))
    for name, parameter in sweep.space.space.items():
        if parameter.type_name == "choice":
            yield from ({**base, name: v} for v in parameter.values)


def test_a_trials_overrides_compose_into_the_apps_config(tmp_path):
    from hydra import compose, initialize_config_dir

    (tmp_path / "config.yaml").write_text(
        "model: {lr: 0.1, depth: 1, act: relu, name: x, flag: false, opt: adam, tags: []}\ndb: sqlite\n")
    sweep = space_from_params({"model.lr": "tag(log, interval(1e-5, 1e-1))", "model.depth": "range(2, 6)",
                               "model.name": AWKWARD_CHOICE,
                               "model.flag": "choice(true, false)", "model.opt": "1,null,sgd",
                               "+model.extra": "choice(0.5, 1)", "db": "mysql"})
    trials = [{"model.lr": 1e-05, "model.depth": 5, "model.name": name, "model.flag": flag, "model.opt": opt,
               "model.extra": extra}
              for name, flag, opt, extra in zip(AWKWARD, [True, False] * 8, ["null", "1", "sgd"] * 5, [0.5, 1] * 8)]
    with initialize_config_dir(config_dir=str(tmp_path), version_base=None):
        for values in trials:
            config = compose("config", overrides=sweep.overrides(values))
            job = {"model.lr": config.model.lr, "model.depth": config.model.depth, "model.name": config.model.name,
                   "model.flag": config.model.flag, "model.opt": config.model.opt, "model.extra": config.model.extra}
            expected = {**values, "model.opt": {"null": None, "1": 1, "sgd": "sgd"}[values["model.opt"]]}
            assert all(_same(job[k], expected[k]) for k in job), (job, expected)
            assert config.db == "mysql"


@pytest.mark.parametrize("text, says", [
    ("glob(*)", "glob"),
    ("choice(choice(1, 2), 3)", "sweep inside a sweep"),
    ("tag(foo, interval(0, 1))", "no tag foo"),
    ("tag(log, range(1, 10))", "no tag log"),
    ("tag(log, choice(1, 10))", "no tag log"),
    ("range(5, 1)", "holds no values"),
    ("range(0, 1, 0)", "holds no values"),
    ("range(0.0, 1.0, 0.0)", "holds no values"),
    ("tag(log, interval(0, 1))", "min > 0"),
    ("tag(int, interval(0.5, 3))", "must be an integer"),
    ("interval(3, 1)", "greater than"),
    ("choice(1, 1)", "duplicates"),
    ("choice(1,", "not in Hydra's override grammar"),
    ("nosuch(1)", "Unknown function 'nosuch'"),
])
def test_what_cannot_be_searched_is_one_config_error_naming_the_key(text, says):
    with pytest.raises(ConfigError) as raised:
        space_from_params({"ok": "choice(1, 2)", "model.x": text})
    assert raised.value.field == "hydra.sweeper.params.model.x"
    assert says in str(raised.value) and text.replace(" ", "")[:6] in str(raised.value).replace(" ", "")


def test_a_command_line_sweep_error_names_the_command_line_key():
    with pytest.raises(ConfigError) as raised:
        space_from_params(SPHERE, ["model.x=glob(*)"])
    assert raised.value.field == "command line model.x"
