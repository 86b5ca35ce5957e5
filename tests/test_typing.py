"""gantk's annotations as a user's code meets them: the documented usage in tests/typing passes mypy --strict."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_documented_usage_type_checks_and_a_misspelt_name_is_an_error(tmp_path):
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # gantk's source: mypy does not see an editable install's import hook
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path), "--no-error-summary",
         "documented_usage.py", "misspelt.py"],
        cwd=ROOT / "tests" / "typing", env=env, capture_output=True, text=True, timeout=600)
    assert checked.stdout.splitlines() == [
        'misspelt.py:3: error: Module "gantk.train" has no attribute "TrainConfg"; maybe "TrainConfig"?  [attr-defined]'
    ], checked.stdout + checked.stderr
