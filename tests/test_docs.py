"""Every fenced code block of README.md and docs/*.md runs, or says on its fence line that it does not.

The convention, read from the words after the language on the fence line:

    ```python                        runs; the Python blocks of a page share one namespace, in order
    ```bash run                      runs each command line (also sh/shell; ``console run``: the ``$ `` lines)
    ```toml file=pkg/pyproject.toml  is written to that path for the page's later blocks
                                     (a ``.py`` file is compiled, a ``.toml`` file parsed)
    ```bash illustrative             is shown, not run (any language: ``text illustrative``, ...)

Any other block (a bare ```bash, a ```toml without ``file=``, a fence without a language) fails
``test_every_block_runs_or_is_marked``, which names the file and line: add ``run``,
``file=PATH`` or ``illustrative`` to its fence line.

Each page runs in a fresh temporary directory, its working directory and first on ``sys.path``,
with ``MPLBACKEND=Agg``. A command line that starts with ``gantk`` or ``pytest`` and uses no shell
syntax runs in-process (click's test runner, ``pytest.main``), saving an interpreter start-up
per line; any other line runs in ``bash -eo pipefail`` with this interpreter's ``bin`` first on
``PATH``. Keep run blocks tiny (a few steps, 32-64 px crops): the whole file runs in CI.

The CLI reference (docs/cli.md) is checked against the click commands: every command of
``gantk.cli.cli`` (plugin commands excluded) has a ``gantk ...`` heading listing all its options
and arguments, and every command heading and every ``--option`` of a command's section exists.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gantk.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CLI_PAGE = ROOT / "docs" / "cli.md"

SHELLS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?~\[\]{}]|^\w+=")


@dataclass
class Block:
    """A fenced block: where it starts, its language, the words after it and its text."""

    path: Path
    line: int
    lang: str
    words: list[str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def file(self) -> str | None:
        return next((w.partition("=")[2] for w in self.words if w.startswith("file=")), None)

    def action(self) -> str | None:
        """``python``, ``shell``, ``file`` or ``skip``; ``None`` when the block breaks the convention."""
        if "illustrative" in self.words:
            return "skip"
        if self.file:
            return "file"
        if self.lang == "python" and not self.words:
            return "python"
        if self.lang in SHELLS and self.words == ["run"]:
            return "shell"
        return None


@dataclass
class Page:
    blocks: list[Block] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_page(path: Path) -> Page:
    page = Page()
    lines = path.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        match = FENCE.match(lines[number])
        number += 1
        if not match:
            continue
        start, indent, fence = number, len(match["indent"]), match["fence"]
        info = match["info"].split()
        body = []
        while number < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[number]):
            text = lines[number]
            body.append(text[indent:] if text[:indent].strip() == "" else text.lstrip())
            number += 1
        if number == len(lines):
            page.problems.append(f"{path.relative_to(ROOT)}:{start}: the code block is never closed")
        number += 1
        lang = info[0] if info and info[0] not in ("run", "illustrative") and "=" not in info[0] else ""
        words = info[1:] if lang else info
        page.blocks.append(Block(path, start, lang, words, "\n".join(body) + "\n"))
    return page


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- the convention -------------------------------------------------------------------------------


def test_every_block_runs_or_is_marked():
    problems = []
    for path in PAGES:
        page = read_page(path)
        problems += page.problems
        for block in page.blocks:
            if block.action() is None:
                fence = " ".join(["```" + block.lang, *block.words]).strip()
                problems.append(
                    f"{block.where}: '{fence}' is neither run nor marked; use ```python, ```bash run, "
                    "```<lang> file=PATH, or add 'illustrative' to the fence line"
                )
            elif block.action() == "file" and (Path(block.file).is_absolute() or ".." in Path(block.file).parts):
                problems.append(f"{block.where}: file={block.file} must be a relative path inside the page's folder")
    assert not problems, "code blocks breaking the docs convention (see tests/test_docs.py):\n" + "\n".join(problems)


def test_the_convention_is_read_as_documented(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 1\n```\n```bash run\ngantk list\n```\n```bash\nrm -rf /\n```\n"
        "```text illustrative\nout\n```\n```toml file=a/b.toml\nk = 1\n```\n  ```console run\n  $ ls\n  ```\n"
    )
    blocks = read_page(page).blocks
    assert [b.action() for b in blocks] == ["python", "shell", None, "skip", "file", "shell"]
    assert blocks[4].file == "a/b.toml" and blocks[5].text == "$ ls\n"


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_resolve():
    problems = []
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        prose = re.sub(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1", "", text, flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            file, _, fragment = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                problems.append(f"{path.relative_to(ROOT)}: link to {target}: {file} does not exist")
            elif fragment and linked.suffix == ".md":
                headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", linked.read_text(encoding="utf-8"), flags=re.M)
                if fragment not in {anchor(h) for h in headings}:
                    problems.append(f"{path.relative_to(ROOT)}: link to {target}: no heading '#{fragment}' in {file or path.name}")
    assert not problems, "broken links:\n" + "\n".join(problems)


# -- running the pages ----------------------------------------------------------------------------


def command_lines(block: Block) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and console output dropped."""
    lines, current = [], ""
    for raw in block.text.splitlines():
        if block.lang == "console" and not current:
            if not raw.startswith("$ "):
                continue
            raw = raw[2:]
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip() and not current.strip().startswith("#"):
            lines.append(current.strip())
        current = ""
    return lines


def run_command(line: str, cwd: Path, where: str) -> None:
    words = shlex.split(line, comments=True)
    in_process = words and words[0] in ("gantk", "pytest") and not SHELL_SYNTAX.search(line.split(" #")[0])
    if in_process and words[0] == "gantk":
        result = CliRunner().invoke(cli, words[1:])
        detail = result.output + ("" if result.exception is None or isinstance(result.exception, SystemExit)
                                  else f"\n{type(result.exception).__name__}: {result.exception}")
        assert result.exit_code == 0, f"{where}: `{line}` exited with {result.exit_code}:\n{detail}"
        return
    if in_process:
        code = pytest.main([*words[1:], "-p", "no:cacheprovider"])
        assert code == 0, f"{where}: `{line}` exited with {code}"
        return
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{where}: `{line}` exited with {done.returncode}:\n{done.stdout}{done.stderr}"


def write_file(block: Block, cwd: Path) -> None:
    target = cwd / block.file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.text, encoding="utf-8")
    if target.suffix == ".py":
        compile(block.text, block.where, "exec")
    elif target.suffix == ".toml":
        tomllib.loads(block.text)


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_page_runs(path, tmp_path, monkeypatch):
    page = read_page(path)
    if not any(block.action() in ("python", "shell", "file") for block in page.blocks):
        pytest.skip("no block to run")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "docs_page"}
    modules_before = set(sys.modules)
    try:
        for block in page.blocks:
            action = block.action()
            if action == "python":
                exec(compile(block.text, block.where, "exec"), namespace)
            elif action == "file":
                write_file(block, tmp_path)
            elif action == "shell":
                for line in command_lines(block):
                    run_command(line, tmp_path, block.where)
    finally:
        for name in set(sys.modules) - modules_before:  # modules the page wrote and imported
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file.startswith(str(tmp_path)):
                del sys.modules[name]


# -- the CLI reference ----------------------------------------------------------------------------


def gantk_commands(group: click.Group = cli, prefix: str = "gantk") -> dict[str, click.Command]:
    """``{"gantk train": command, "gantk data check": command, ...}``, gantk's own commands only."""
    found = {}
    for name, command in sorted(group.commands.items()):
        module = getattr(command.callback, "__module__", "") or ""
        if module != "gantk" and not module.startswith("gantk."):
            continue  # added by a plugin
        found[f"{prefix} {name}"] = command
        if isinstance(command, click.Group):
            found.update(gantk_commands(command, f"{prefix} {name}"))
    return found


def cli_sections() -> dict[str, str]:
    """Text of docs/cli.md under each heading that names a command (``## `gantk data check` ``)."""
    sections: dict[str, str] = {}
    current, fence = None, None
    for line in CLI_PAGE.read_text(encoding="utf-8").splitlines():
        opening = FENCE.match(line)
        if opening and fence is None:
            fence = opening["fence"]
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        heading = fence is None and re.match(r"^#{1,6}\s+`?(gantk(?: [a-z][a-z0-9-]*)*)`?\s*$", line)
        if heading:
            current = heading[1]
            sections[current] = ""
        elif fence is None and re.match(r"^#{1,6}\s", line):
            current = None
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def option_names(command: click.Command) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts + param.secondary_opts)
    return names


def test_cli_reference_lists_every_command_option_and_argument():
    sections = cli_sections()
    commands = {"gantk": cli, **gantk_commands()}
    problems = []
    for name, command in commands.items():
        if name not in sections:
            problems.append(f"no heading for `{name}`")
            continue
        text = sections[name]
        for param in command.params:
            if isinstance(param, click.Option):
                missing = [opt for opt in param.opts + param.secondary_opts if not re.search(rf"{re.escape(opt)}(?![\w-])", text)]
                problems += [f"`{name}`: option {opt} is not documented" for opt in missing]
            elif isinstance(param, click.Argument) and param.human_readable_name not in text:
                problems.append(f"`{name}`: argument {param.human_readable_name} is not documented")
    assert not problems, "docs/cli.md is out of date:\n" + "\n".join(problems)


def test_cli_reference_names_only_real_commands_and_options():
    commands = {"gantk": cli, **gantk_commands()}
    problems = []
    for name, text in cli_sections().items():
        if name not in commands:
            problems.append(f"heading `{name}` is not a gantk command")
            continue
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # examples may use any command
        for opt in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", prose)) - option_names(commands[name])):
            problems.append(f"`{name}` has no option {opt}")
    assert not problems, "docs/cli.md names things the CLI does not have:\n" + "\n".join(problems)
