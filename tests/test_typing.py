"""gantk's annotations as a user's code meets them: the documented usage in tests/typing passes mypy --strict."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_documented_usage_type_checks_and_misspelt_names_are_errors(tmp_path):
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # gantk's source: mypy does not see an editable install's import hook
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path), "--no-error-summary",
         "documented_usage.py", "misspelt.py"],
        cwd=ROOT / "tests" / "typing", env=env, capture_output=True, text=True, timeout=600)
    assert checked.stdout.splitlines() == [
        'misspelt.py:5: error: Module "gantk.train" has no attribute "TrainConfg"; maybe "TrainConfig"?  [attr-defined]',
        'misspelt.py:8: error: Unexpected keyword argument "progres" for "resume" of "Trainer"; did you mean "progress"?  [call-arg]',
        'misspelt.py:8: note: "resume" defined in "gantk.train.trainer"',
    ], checked.stdout + checked.stderr


def test_the_documented_usage_holds_the_data_format_of_writing_a_plugin():
    page = (ROOT / "docs" / "writing-a-plugin.md").read_text()
    example = page.split("```python file=gantk-tv/gantk_tv/data_format.py\n", 1)[1].split("\n```\n", 1)[0]
    assert example[example.index("class SuffixedPairs"):] in (ROOT / "tests" / "typing" / "documented_usage.py").read_text()
