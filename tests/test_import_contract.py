"""The import contract (pyproject.toml's [tool.importlinter]) fails on a violation.

``scripts/check`` runs ``lint-imports`` on the package; these tests run it on
a copy of the package with one bad import added, and see it named.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contracts, to break on purpose."""
    shutil.copytree(ROOT / "src" / "rigd", tmp_path / "src" / "rigd")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint(tree: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    args = [str(LINT_IMPORTS), "--no-cache"]
    for contract in contracts:
        args += ["--contract", contract]
    return subprocess.run(
        args,
        cwd=tree,
        env={"PYTHONPATH": str(tree / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold_on_the_package_as_it_is(tree: Path) -> None:
    result = lint(tree, "layers", "h5py", "nwb", "cupy", "nvml", "aravis", "video", "tiff")
    assert result.returncode == 0, result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_layers(tree: Path) -> None:
    (tree / "src/rigd/storage/_bad.py").write_text("from rigd.service import _api\n")
    result = lint(tree, "layers")
    assert result.returncode == 1
    assert "rigd.storage._bad -> rigd.service._api" in result.stdout


def test_a_second_module_importing_a_hardware_library_breaks_its_contract(tree: Path) -> None:
    (tree / "src/rigd/config/_bad.py").write_text("import h5py\n")
    result = lint(tree, "h5py")
    assert result.returncode == 1
    assert "rigd.config._bad -> h5py" in result.stdout


def test_importing_the_facade_from_inside_the_package_is_named(tree: Path) -> None:
    (tree / "src/rigd/gpu/_bad.py").write_text("import rigd\n")
    result = lint(tree, "facade")
    assert result.returncode == 1
    assert "rigd.gpu._bad -> rigd" in result.stdout


def test_importing_another_packages_private_module_is_named(tree: Path) -> None:
    (tree / "src/rigd/config/_bad.py").write_text("from rigd.storage._ring import FrameRing\n")
    result = lint(tree, "private")
    assert result.returncode == 1
    assert "rigd.config._bad -> rigd.storage._ring" in result.stdout
