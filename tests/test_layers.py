"""The layers of pipeline/ import only the layers before them (pipeline/__init__.py).

Checked two ways: statically (every import statement of every module, against the table
below) and at run time (importing the model layer loads none of the heavy libraries).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PIPELINE = REPO / "pipeline"

#: Layer -> the pipeline layers it may import (itself included).
ALLOWED_LAYERS: dict[str, set[str]] = {
    "common": {"common"},
    "spec": {"common", "spec"},
    "model": {"common", "spec", "model"},
    "analysis": {"common", "spec", "model", "analysis"},
    "outputs": {"common", "spec", "model", "analysis", "outputs"},
    "compose": {"common", "spec", "model", "analysis", "outputs", "compose"},
    "backtest": {"common", "spec", "model", "analysis", "outputs", "compose", "backtest"},
    "report": {"common", "spec", "model", "analysis", "outputs", "report"},
}
#: Layer -> third-party packages it must not import.
FORBIDDEN_PACKAGES: dict[str, set[str]] = {
    "common": {"pyarrow", "pandas", "prefect", "matplotlib", "scipy", "pydantic"},
    "spec": {"pyarrow", "pandas", "prefect", "matplotlib"},
    "model": {"pyarrow", "pandas", "prefect", "matplotlib", "pydantic", "yaml"},
    "analysis": {"pyarrow", "pandas", "prefect", "matplotlib"},
    "outputs": {"prefect", "matplotlib"},
    "compose": {"prefect", "matplotlib"},
    "backtest": {"prefect", "matplotlib"},
    "report": {"prefect"},
}


def _layer(path: Path) -> str:
    parts = path.relative_to(PIPELINE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[str]:
    """Absolute module names imported anywhere in the file (incl. inside functions)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "pipeline":
                names += [f"pipeline.{alias.name}" for alias in node.names]
            else:
                names.append(node.module)
    return names


MODULES = sorted(
    p for p in PIPELINE.rglob("*.py") if p.name != "__init__.py" or p.parent != PIPELINE
)


def test_every_module_belongs_to_a_known_layer() -> None:
    assert {_layer(p) for p in MODULES} <= set(ALLOWED_LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_module_imports_only_what_its_layer_may(path: Path) -> None:
    layer = _layer(path)
    bad = []
    for name in _imports(path):
        top, _, rest = name.partition(".")
        if top == "pipeline":
            target = rest.split(".")[0]
            if target in ALLOWED_LAYERS and target not in ALLOWED_LAYERS[layer]:
                bad.append(name)
        elif top in FORBIDDEN_PACKAGES[layer]:
            bad.append(name)
    assert not bad, f"{layer} layer module imports {bad}"


def test_model_layer_loads_no_heavy_library() -> None:
    code = (
        "import sys, pipeline.model.plan, pipeline.model.simulate, pipeline.model.sampling;"
        "print(sorted(m for m in ('pyarrow', 'pandas', 'prefect', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    fake = tmp_path / "mod.py"
    fake.write_text("def f():\n    import pyarrow.compute\n    from pipeline import report\n")
    assert _imports(fake) == ["pyarrow.compute", "pipeline.report"]
