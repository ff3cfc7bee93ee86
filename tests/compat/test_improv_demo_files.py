"""improv's minimal demo generator saves ``sample_generator_data.npy`` in the
working directory when it stops, as improv's own demo does (the demo keeps
improv's shape); run from the repository's root, that file is ignored by git."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_improv_demos_saved_matrix_is_ignored_in_the_working_tree(tmp_path: Path) -> None:
    # Before, `rigd run tests/compat/improv_demo/minimal.yaml` from the root left
    # it untracked. git's own matching (--no-index: whether or not it is there).
    assert (
        'np.save("sample_generator_data.npy"'
        in (ROOT / "tests/compat/improv_demo/sample_generator.py").read_text()
    )
    checked = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "--no-index", "-v", "sample_generator_data.npy"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(".gitignore:")
