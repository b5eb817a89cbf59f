"""Scenario files: every shipped one loads; every kind of mistake gives a ScenarioError that names
the file, the dotted field path and what is allowed; overrides; the config hash."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from strategies import CONFIG_DIR, SCENARIO_PATHS

from pipeline.spec.catalog import INPUT_NAMES
from pipeline.spec.scenario import Scenario, ScenarioError, load_scenario, parse_override

HARDLINE = CONFIG_DIR / "scenarios" / "hardline.yaml"
BASELINE = CONFIG_DIR / "scenarios" / "baseline.yaml"

WriteScenario = Callable[..., Path]


@functools.cache
def shipped(path: Path) -> Scenario:
    """A shipped file, loaded once (validation resolves every marginal, ~0.1 s a load)."""
    return load_scenario(path)


# --------------------------------------------------------------------------- shipped files


def test_there_are_scenarios() -> None:
    assert len(SCENARIO_PATHS) >= 5


@pytest.mark.parametrize("path", SCENARIO_PATHS, ids=lambda p: p.stem)
def test_shipped_scenarios_load(path: Path) -> None:
    scenario = shipped(path)
    assert re.fullmatch(r"[a-z0-9_-]+", scenario.name)
    assert scenario.name == path.stem
    assert list(scenario.inputs) == list(INPUT_NAMES)  # catalog order = hypercube column order
    assert scenario.description


def test_shipped_scenario_names_are_unique() -> None:
    names = [shipped(p).name for p in SCENARIO_PATHS]
    assert len(set(names)) == len(names)


def test_base_file_loads_alone() -> None:
    scenario = shipped(CONFIG_DIR / "base.yaml")
    assert scenario.name == "base"
    assert scenario.rank_correlation is not None


@pytest.mark.parametrize("path", SCENARIO_PATHS, ids=lambda p: p.stem)
def test_scenario_overrides_only_what_it_states(path: Path) -> None:
    """Inputs a scenario file names replace the base's spec whole; all others are the base's."""
    base, scenario = shipped(CONFIG_DIR / "base.yaml"), shipped(path)
    stated = (yaml.safe_load(path.read_text()) or {}).get("inputs", {})
    for name in INPUT_NAMES:
        if name in stated:
            assert scenario.inputs[name].model_dump(exclude_defaults=True) == stated[name]
        else:
            assert scenario.inputs[name] == base.inputs[name], name


def test_hardline_changes_inputs() -> None:
    base, hard = shipped(CONFIG_DIR / "base.yaml"), shipped(HARDLINE)
    assert hard.inputs["us_headline_ask_usd_bn"] != base.inputs["us_headline_ask_usd_bn"]
    assert hard.simulation == base.simulation and hard.model == base.model


def test_scenario_is_frozen() -> None:
    scenario = shipped(BASELINE)
    with pytest.raises(ValidationError):
        scenario.name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- invalid files


@pytest.fixture
def write_scenario(tmp_path: Path) -> WriteScenario:
    """Write a scenario into tmp_path/scenarios/ next to a copy of the real base file."""
    # The copy names the host's data files by absolute path (they are relative to base.yaml).
    base = (CONFIG_DIR / "base.yaml").read_text(encoding="utf-8")
    base = base.replace("../data/", f"{CONFIG_DIR.parent / 'data'}/")
    (tmp_path / "base.yaml").write_text(base, encoding="utf-8")
    (tmp_path / "scenarios").mkdir()

    def write(text: str, stem: str = "bad") -> Path:
        path = tmp_path / "scenarios" / f"{stem}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def _error(path: Path, **kwargs: Any) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, **kwargs)
    return info.value


_PERT = "{dist: pert, min: 0.2, mode: 0.5, max: 1.0"
_FIELD_CASES = [
    # (id, scenario text, dotted field path, what-is-allowed regex)
    (
        "unknown_top_level_key",
        "name: bad\nfoo: 1\n",
        "foo",
        r"unknown key 'foo'; allowed: name, description, simulation, model, host, us_administrations, inputs",
    ),
    (
        "unknown_model_key",
        "name: bad\nmodel:\n  horizon: 2031\n",
        "model.horizon",
        r"unknown key 'horizon'; allowed: .*horizon_year",
    ),
    (
        "unknown_mechanism",
        "name: bad\nmodel:\n  mechanisms:\n    sanctions: true\n",
        "model.mechanisms.sanctions",
        r"allowed: reopening, package_deal, troop_lever",
    ),
    (
        "unknown_input",
        "name: bad\ninputs:\n  oil_price: {dist: fixed, value: 80.0}\n",
        "inputs",
        r"unknown input\(s\) \['oil_price'\]; allowed: trump_demand_intensity, ",
    ),
    (
        "number_as_text",
        "name: bad\ninputs:\n  krw_per_usd: {dist: normal, p05: '1330.5', p95: 1560.0}\n",
        "inputs.krw_per_usd.p05",
        r"valid number \(got '1330.5' of type str\)",
    ),
    (
        "nan",
        "name: bad\ninputs:\n  krw_per_usd: {dist: normal, p05: .nan, p95: 1560.0}\n",
        "inputs.krw_per_usd.p05",
        r"must be a finite number",
    ),
    (
        "p05_above_p95",
        "name: bad\ninputs:\n  krw_per_usd: {dist: normal, p05: 1600.0, p95: 1560.0}\n",
        "inputs.krw_per_usd",
        r"p05 \(1600.0\) must be below p95 \(1560.0\)",
    ),
    (
        "probability_above_1",
        "name: bad\ninputs:\n  package_deal: {dist: bernoulli, p: 1.2}\n",
        "inputs.package_deal.p",
        r"less than or equal to 1",
    ),
    (
        "unknown_dist",
        "name: bad\ninputs:\n  krw_per_usd: {dist: gamma, shape: 2.0}\n",
        "inputs.krw_per_usd",
        r"unknown dist; allowed: fixed, uniform, normal, lognormal, pert",
    ),
    (
        "binary_input_wrong_family",
        "name: bad\ninputs:\n  package_deal: " + _PERT + "}\n",
        "inputs.package_deal",
        r"a yes/no input takes dist 'bernoulli' or 'fixed'",
    ),
    (
        "non_psd_matrix",
        "name: bad\nrank_correlation:\n  inputs: [krw_per_usd, korea_cpi_pct, "
        "korea_defense_budget_growth_pct]\n"
        "  matrix: [[1, 0.9, 0.9], [0.9, 1, -0.9], [0.9, -0.9, 1]]\n",
        "rank_correlation",
        r"not positive semi-definite .*lower the largest correlations",
    ),
    (
        "non_symmetric_matrix",
        "name: bad\nrank_correlation:\n  inputs: [krw_per_usd, korea_cpi_pct]\n"
        "  matrix: [[1, 0.5], [0.4, 1]]\n",
        "rank_correlation",
        r"matrix must be symmetric",
    ),
    (
        "matrix_wrong_shape",
        "name: bad\nrank_correlation:\n  inputs: [krw_per_usd, korea_cpi_pct]\n"
        "  matrix: [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 1]]\n",
        "rank_correlation",
        r"must be 2x2 to match inputs",
    ),
    (
        "name_with_uppercase_and_space",
        "name: Bad Name\n",
        "name",
        re.escape("should match pattern '^[a-z0-9_-]{1,64}$'"),
    ),
    (
        "simulation_out_of_range",
        "name: bad\nsimulation:\n  n_trials: 0\n",
        "simulation.n_trials",
        r"greater than or equal to 1",
    ),
    (
        "unknown_sampler",
        "name: bad\nsimulation:\n  sampler: halton\n",
        "simulation.sampler",
        r"'mc', 'lhs' or 'sobol'",
    ),
    (
        "input_outside_allowed_range",
        "name: bad\ninputs:\n  trump_demand_intensity: {dist: pert, min: 0.2, mode: 0.5, max: 1.5}\n",
        "inputs.trump_demand_intensity",
        r"highest value is 1.5, outside the allowed range \[0, 1\] \(index 0-1\)",
    ),
]


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [pytest.param(t, f, a, id=i) for i, t, f, a in _FIELD_CASES],
)
def test_invalid_scenario_names_file_field_and_allowed(
    write_scenario: WriteScenario, text: str, field: str, allowed: str
) -> None:
    path = write_scenario(text)
    err = _error(path)
    message = str(err)
    assert err.source == str(path)
    assert message.startswith(f"{path}: {field}: "), message
    assert err.field == field
    assert re.search(allowed, message), message


def test_unknown_key_in_input_spec_says_what_is_allowed(write_scenario: WriteScenario) -> None:
    path = write_scenario("name: bad\ninputs:\n  trump_demand_intensity: " + _PERT + ", foo: 1}\n")
    err = _error(path)
    assert err.field == "inputs.trump_demand_intensity.foo"
    assert str(err).startswith(f"{path}: inputs.trump_demand_intensity.foo: unknown key 'foo'")
    assert "allowed: min, mode, max, shape" in str(err)


def test_empty_file(write_scenario: WriteScenario) -> None:
    path = write_scenario("")
    assert str(_error(path)) == f"{path}: file is empty; a scenario needs at least a 'name'"


def test_comment_only_file_is_empty(write_scenario: WriteScenario) -> None:
    path = write_scenario("# nothing here\n")
    assert "file is empty" in str(_error(path))


def test_not_a_mapping(write_scenario: WriteScenario) -> None:
    path = write_scenario("- a\n- b\n")
    assert str(_error(path)) == f"{path}: must be a mapping of keys to values, not list"


def test_broken_yaml_names_line(write_scenario: WriteScenario) -> None:
    path = write_scenario("name: bad\ninputs:\n  krw_per_usd: {dist: normal, p05: 1330.0\n  x: 1\n")
    message = str(_error(path))
    assert message.startswith(f"{path}: invalid YAML at line 4, column "), message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "scenarios" / "nowhere.yaml"
    assert str(_error(path)) == f"{path}: file not found"


def test_directory_is_not_a_scenario(tmp_path: Path) -> None:
    assert "is a directory" in str(_error(tmp_path))


def test_missing_base_named_explicitly(write_scenario: WriteScenario) -> None:
    path = write_scenario("name: bad\nbase: ../nowhere.yaml\n")
    err = _error(path)
    assert err.source.endswith("nowhere.yaml") and "file not found" in str(err)


def test_error_in_base_file_names_the_base(write_scenario: WriteScenario, tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text(
        base.read_text().replace(
            "krw_per_usd: {dist: normal, p05: 1330.0, p95: 1560.0}",
            "krw_per_usd: {dist: normal, p05: 1560.0, p95: 1330.0}",
        )
    )
    path = write_scenario("name: fine\n")
    err = _error(path)
    assert err.source == str(path.parent / ".." / "base.yaml")
    assert err.field == "inputs.krw_per_usd"


def test_scenario_without_name_is_named_after_its_file(write_scenario: WriteScenario) -> None:
    path = write_scenario("description: no name given\n", stem="nameless")
    assert load_scenario(path).name == "nameless"


# --------------------------------------------------------------------------- overrides


def test_override_on_hardline() -> None:
    plain = shipped(HARDLINE)
    changed = load_scenario(HARDLINE, {"us_headline_ask_usd_bn.value": 12})
    spec = changed.inputs["us_headline_ask_usd_bn"]
    assert spec.dist == "fixed" and spec.value == 12.0
    assert {n for n in INPUT_NAMES if plain.inputs[n] != changed.inputs[n]} == {
        "us_headline_ask_usd_bn"
    }


def test_override_dict_replaces_whole_spec() -> None:
    s = load_scenario(BASELINE, {"trump_demand_intensity": {"dist": "fixed", "value": 0.3}})
    assert s.inputs["trump_demand_intensity"].model_dump() == {"dist": "fixed", "value": 0.3}


def test_override_of_a_setting() -> None:
    s = load_scenario(BASELINE, {"model.mechanisms.package_deal": False, "simulation.n_trials": 10})
    assert s.model.mechanisms.package_deal is False and s.simulation.n_trials == 10
    assert s.model.mechanisms.reopening is True  # siblings kept


def test_simulation_argument_replaces_run_settings_only() -> None:
    s = load_scenario(BASELINE, simulation={"n_trials": 123, "sampler": "lhs"})
    base = shipped(BASELINE)
    assert (s.simulation.n_trials, s.simulation.sampler) == (123, "lhs")
    assert s.simulation.seed == base.simulation.seed
    assert s.simulation.chunk_size == base.simulation.chunk_size


def test_override_unknown_input_names_set() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, {"oil_price.p05": 80})
    message = str(info.value)
    assert message.startswith("--set: oil_price.p05: unknown input or setting 'oil_price'")
    assert "inputs: trump_demand_intensity" in message and "settings: name, description" in message


def test_override_unknown_spec_field_names_set_and_allowed() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, {"krw_per_usd.p07": 1.0})
    assert str(info.value).startswith("--set: krw_per_usd.p07: input 'krw_per_usd' (dist normal)")
    assert "allowed: mean, sd, p01, p05" in str(info.value)


def test_override_through_a_value_is_rejected() -> None:
    with pytest.raises(ScenarioError, match=r"^--set: name.x: 'name' is not a section"):
        load_scenario(BASELINE, {"name.x": 1})


def test_invalid_override_value_is_attributed_to_set() -> None:
    """A bad value from an override is blamed on --set, not on the file that set the input."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, {"krw_per_usd.p05": "1330"})
    assert info.value.source == "--set"
    assert str(info.value).startswith("--set: inputs.krw_per_usd.p05: Input should be a valid")
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, {"trump_demand_intensity": {"dist": "fixed", "value": 2.0}})
    assert info.value.source == "--set" and info.value.field == "inputs.trump_demand_intensity"


def test_override_replaces_matching_side_of_quantile_pair() -> None:
    both = load_scenario(BASELINE, {"krw_per_usd.p10": 1300.0, "krw_per_usd.p90": 1500.0})
    spec = both.inputs["krw_per_usd"]
    assert (spec.p10, spec.p90, spec.p05, spec.p95) == (1300.0, 1500.0, None, None)
    one = load_scenario(BASELINE, {"krw_per_usd.p10": 1300.0}).inputs["krw_per_usd"]
    assert (one.p10, one.p95, one.p05) == (1300.0, 1560.0, None)


def test_invalid_simulation_argument_is_not_blamed_on_a_file() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, simulation={"n_trials": 0})
    assert info.value.field == "simulation.n_trials"
    assert not info.value.source.endswith(".yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.b=3", ("a.b", 3)),
        ("us_headline_ask_usd_bn.p95=12", ("us_headline_ask_usd_bn.p95", 12)),
        ("model.mechanisms.package_deal=false", ("model.mechanisms.package_deal", False)),
        ("x.y = 1.5", ("x.y", 1.5)),
        ("x=[1, 2]", ("x", [1, 2])),
        ("x={dist: fixed, value: 2}", ("x", {"dist": "fixed", "value": 2})),
        ("name=hard-2", ("name", "hard-2")),
        ("x.y=", ("x.y", None)),
        ("x.y=a=b", ("x.y", "a=b")),
    ],
)
def test_parse_override(text: str, expected: tuple[str, Any]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["a.b", "=3", "a..b=1", "a b=1", ".a=1", "a.=1", "x=[1, 2"])
def test_parse_override_rejects(text: str) -> None:
    with pytest.raises(ScenarioError, match=r"^--set: "):
        parse_override(text)


# --------------------------------------------------------------------------- config hash


_ORDER_A = """name: same
description: hash test
simulation: {n_trials: 1000, seed: 7}
inputs:
  krw_per_usd: {dist: normal, p05: 1330.0, p95: 1560.0}
  package_deal: {dist: bernoulli, p: 0.7}
"""
_ORDER_B = """# the same scenario, keys in another order and block style
inputs:
  package_deal:
    p: 0.7
    dist: bernoulli
  krw_per_usd: {p95: 1560.0, dist: normal, p05: 1330.0}
simulation:
  seed: 7
  n_trials: 1000
description: hash test
name: same
"""


def test_config_hash_stable_across_key_order(write_scenario: WriteScenario) -> None:
    a = load_scenario(write_scenario(_ORDER_A, stem="a"))
    b = load_scenario(write_scenario(_ORDER_B, stem="b"))
    assert re.fullmatch(r"[0-9a-f]{64}", a.config_hash())
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() == load_scenario(write_scenario(_ORDER_A, stem="a")).config_hash()


def test_config_hash_changes_with_an_input(write_scenario: WriteScenario) -> None:
    a = load_scenario(write_scenario(_ORDER_A, stem="a"))
    changed = load_scenario(write_scenario(_ORDER_A.replace("p: 0.7", "p: 0.71"), stem="c"))
    assert a.config_hash() != changed.config_hash()
    overridden = load_scenario(write_scenario(_ORDER_A, stem="a"), {"krw_per_usd.p95": 1561.0})
    assert a.config_hash() != overridden.config_hash()


def test_config_hash_distinguishes_shipped_scenarios() -> None:
    hashes = {Scenario.config_hash(shipped(p)) for p in SCENARIO_PATHS}
    assert len(hashes) == len(SCENARIO_PATHS)
