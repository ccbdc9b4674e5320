"""Every example in docs/ runs, so the documentation cannot drift from the code.

Each page runs in a fresh folder of its own, its blocks in order, as a reader would
try them:

- a ```python block is executed in the page's one namespace (a later block builds on
  the earlier ones); the lines ``#> text`` in it are what its ``print`` calls write,
  line for line (what may differ in a command's output may differ here too);
- a ```console block's ``$ command`` lines run in bash, with this environment's
  ``setwise`` first on PATH; each must exit 0, and the output shown under a command
  must appear in what it printed, in order (a run id, a duration, a date and a
  sparkline may differ, a run id consistently: the id a later command names is the
  one the earlier command really printed); the page's folder is the commands'
  temporary directory, shown as /tmp; ``$ cd DIR`` moves the page's folder;
- a ```bash block's lines are commands alike, with no output shown;
- ``setwise demo --dir DIR > /dev/null`` builds the demo once per test session and
  copies it to DIR on later pages (the demo's 200,000 books take seconds to build);
- a block ``--8<-- "path"`` line is that file of the repository (MkDocs' snippets).

An HTML comment on the line before a block says how to take it:
``<!-- not-run: reason -->`` skips it (it needs a server, or a network), counted
below and kept few; ``<!-- file: PATH -->`` writes the block to PATH in the page's
folder.

Besides the examples: every command of the ``setwise`` executable has help text and
is documented, the API reference covers every public name, and the README's tour is
made of lines the examples run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import setwise

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
BIN = Path(sys.executable).parent
#: Blocks run as Python, and as shell commands.
PYTHON = {"python", "py"}
SHELL = {"console", "bash", "shell", "sh"}
#: How many blocks may be left unrun: each needs a server, the network or a clone.
MAX_NOT_RUN = 6
#: Seconds one shell command may take (the slowest, the demo, takes about 4).
COMMAND_TIMEOUT = 120

MARKER = re.compile(r"^<!--\s*(not-run|file):\s*(.*?)\s*-->$")
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w-]*)")
SNIPPET = re.compile(r'^--8<--\s+"([^"]+)"$')
RUN_ID = r"\d{8}-\d{6}-[0-9a-f]{8}"
#: What may differ between the output shown and a real run: a date and time, seconds or
#: milliseconds, a rate and a sparkline (each matches itself wherever it stands).
VARYING = (
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?",
    r"\d+(?:\.\d+)? ?m?s\b",
    r"[\d,]+ rows/s",
    r"[▁▂▃▄▅▆▇█]+",
)
VARIES = re.compile("|".join(VARYING))


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    """The line of the block's first content line in the page (1-based)."""
    lang: str
    text: str
    marker: str | None = None
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, dedented, snippets read in, with their markers."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, ticks, lang = fence.group(1), fence.group(2), fence.group(3).lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != ticks:
            end += 1
        assert end < len(lines), f"{page.relative_to(ROOT)}:{i + 1}: the block is never closed"
        body = [line[len(indent) :] for line in lines[i + 1 : end]]
        previous = next((line.strip() for line in reversed(lines[:i]) if line.strip()), "")
        marker = MARKER.match(previous)
        found.append(
            Block(
                page,
                i + 2,
                lang,
                "\n".join(snippets(body)) + "\n",
                marker.group(1) if marker else None,
                marker.group(2) if marker else "",
            )
        )
        i = end + 1
    return found


def snippets(body: list[str]) -> Iterator[str]:
    for line in body:
        included = SNIPPET.match(line.strip())
        if included:
            yield from (ROOT / included.group(1)).read_text().splitlines()
        else:
            yield line


def all_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


# -- running a page -------------------------------------------------------------------


class Page:
    """One page's folder, Python namespace and the run ids its commands printed."""

    def __init__(self, folder: Path, demo: Path) -> None:
        self.demo = demo
        """Where the session keeps the demo's folder as first built."""
        self.tmp = folder
        """The page's temporary directory, shown as /tmp in the docs."""
        self.folder = folder
        # A module of its own, as SQLAlchemy finds a model's annotations in its module.
        self.module = types.ModuleType(f"docs_example_{folder.name}")
        sys.modules[self.module.__name__] = self.module
        self.namespace = self.module.__dict__
        self.run_ids: dict[str, str] = {}

    def run(self, block: Block) -> None:
        if block.marker == "not-run":
            return
        if block.marker == "file":
            target = self.folder / block.argument
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text)
        elif block.lang in PYTHON:
            self.python(block)
        elif block.lang in SHELL:
            self.shell(block)

    def python(self, block: Block) -> None:
        where = str(block.page.relative_to(ROOT))
        code = compile("\n" * (block.line - 1) + block.text, where, "exec")
        written = io.StringIO()
        with contextlib.chdir(self.folder), contextlib.redirect_stdout(written):
            exec(code, self.namespace)
        expected = [m.group(1) for m in re.finditer(r"#> ?(.*)$", block.text, re.M)]
        printed = [line.rstrip() for line in written.getvalue().splitlines()]
        shown = "\n".join(printed)
        assert len(printed) == len(expected), f"{block.where}: printed\n{shown}"
        for line, wanted in zip(printed, expected, strict=True):
            self.compare([wanted], line, f"{block.where}: printed\n{shown}")

    def shell(self, block: Block) -> None:
        for line, typed, shown in commands(block):
            command = self.substituted(typed)
            demo = re.fullmatch(r"setwise demo --dir (\S+) > /dev/null", command)
            if demo and self.demo.exists():
                shutil.copytree(self.demo, self.folder / demo.group(1))
                continue
            if re.fullmatch(r"cd \S+", command):
                where = command.split()[1]
                if where.startswith("/tmp/"):
                    where = str(self.tmp / where.removeprefix("/tmp/"))
                self.folder = (self.folder / where).resolve()
                continue
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=self.folder,
                env=environment(self.folder),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                timeout=COMMAND_TIMEOUT,
            )
            where = f"{block.page.relative_to(ROOT)}:{line}: $ {command}"
            assert done.returncode == 0, f"{where}\nexit {done.returncode}\n{done.stdout}"
            if demo:
                shutil.copytree(self.folder / demo.group(1), self.demo)
            self.compare(shown, done.stdout.replace(str(self.tmp), "/tmp"), where)

    def substituted(self, text: str) -> str:
        for shown, real in self.run_ids.items():
            text = text.replace(shown, real)
        return text

    def compare(self, shown: list[str], printed: str, where: str) -> None:
        """Every line shown appears in ``printed``, in order; varying parts may differ."""
        actual = [line.rstrip() for line in printed.splitlines()]
        at = 0
        for expected in shown:
            if expected.strip() in ("", "…", "..."):
                continue
            pattern, ids = self.pattern(expected)
            for index in range(at, len(actual)):
                match = pattern.fullmatch(actual[index])
                if match:
                    self.run_ids.update(zip(ids, match.groups(), strict=True))
                    at = index + 1
                    break
            else:
                rest = "\n".join(actual[at:])
                raise AssertionError(f"{where}\nnot printed: {expected}\nprinted:\n{rest}")

    def pattern(self, expected: str) -> tuple[re.Pattern[str], list[str]]:
        """``expected`` as a pattern: known run ids as the real ones, new ones captured."""
        ids: list[str] = []
        parts: list[str] = []
        for piece in re.split(f"({RUN_ID})", expected.rstrip()):
            if re.fullmatch(RUN_ID, piece):
                if piece in self.run_ids:
                    parts.append(re.escape(self.run_ids[piece]))
                elif piece in ids:
                    parts.append(f"\\{ids.index(piece) + 1}")
                else:
                    ids.append(piece)
                    parts.append(f"({RUN_ID})")
                continue
            at = 0
            for varies in VARIES.finditer(piece):
                parts.append(re.escape(piece[at : varies.start()]))
                parts.append(next(p for p in VARYING if re.fullmatch(p, varies.group())))
                at = varies.end()
            parts.append(re.escape(piece[at:]))
        return re.compile("".join(parts)), ids

    def close(self) -> None:
        sys.modules.pop(self.module.__name__, None)
        for value in self.namespace.values():
            if isinstance(value, Session):
                value.close()
            elif isinstance(value, Engine):
                value.dispose()


def commands(block: Block) -> Iterator[tuple[int, str, list[str]]]:
    """Each command of a shell block, with its line and the output shown under it."""
    lines = block.text.splitlines()
    prompted = block.lang == "console"
    current: tuple[int, str] | None = None
    shown: list[str] = []
    for offset, line in enumerate(lines):
        is_command = line.startswith("$ ") if prompted else bool(line.strip())
        if is_command and not line.lstrip().startswith("#"):
            if current:
                yield (*current, shown)
            current, shown = (block.line + offset, line.removeprefix("$ ")), []
        elif current and prompted:
            shown.append(line)
    if current:
        yield (*current, shown)


def environment(folder: Path) -> dict[str, str]:
    """This environment, with its ``setwise`` first on PATH, no SETWISE_DB, and the
    page's folder as the temporary directory (where ``setwise demo`` builds). Without
    CI's own variables: a reader's terminal is not CI, and pytest (run by the pytest
    plugin's page) stops shortening its summary lines when ``CI`` is set."""
    dropped = ("SETWISE_DB", "COLUMNS", "CI", "BUILD_NUMBER")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(folder)
    return env


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first page that builds the demo keeps a copy for the others."""
    return tmp_path_factory.mktemp("docs") / "demo"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_every_example_of_the_page_runs(page: Path, tmp_path: Path, demo_folder: Path) -> None:
    runner = Page(tmp_path, demo_folder)
    try:
        for block in blocks(page):
            runner.run(block)
    finally:
        runner.close()


# -- what the examples cannot show ----------------------------------------------------


def test_blocks_left_unrun_say_why_and_are_few() -> None:
    unrun = [block for block in all_blocks() if block.marker == "not-run"]
    assert all(block.argument for block in unrun), [b.where for b in unrun if not b.argument]
    assert len(unrun) <= MAX_NOT_RUN, [f"{b.where}: {b.argument}" for b in unrun]
    run = [b for b in all_blocks() if b.lang in PYTHON | SHELL and b.marker != "not-run"]
    assert len(run) > 5 * len(unrun)


def test_every_command_has_help_text_and_is_documented() -> None:
    shown = setwise_help("--help")
    panel = shown.split("─ Commands ")[1].split("╰")[0]
    summaries = dict(re.findall(r"^│ ([a-z]+)\s{2,}(\S.*?)\s*│$", panel, re.M))
    assert {"plan", "apply", "revert"} <= set(summaries), shown
    text = "\n".join(page.read_text() for page in PAGES)
    reference = (DOCS / "cli.md").read_text()
    for name, summary in summaries.items():
        assert len(summary) > 10, name
        assert f"setwise {name}" in text, name
        assert f"## `setwise {name}`" in reference, name


def test_the_api_reference_covers_every_public_name() -> None:
    reference = "\n".join(page.read_text() for page in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: setwise\.(\w+)$", reference, re.M))
    assert documented == set(setwise.__all__) | {"alembic"}
    internal = re.findall(r"setwise\.(?!alembic\b)[a-z_]+\.[a-z_]+", reference)
    assert not internal, internal


def test_the_error_tree_names_every_error() -> None:
    tree = (DOCS / "reference" / "errors.md").read_text().split("```text")[1].split("```")[0]
    drawn = set(re.findall(r"^\W*([A-Z]\w+(?:Error|Interrupted))\b", tree, re.M))
    errors = {name for name in setwise.__all__ if isinstance(getattr(setwise, name), type)}
    raised = {name for name in errors if issubclass(getattr(setwise, name), BaseException)}
    assert drawn == raised


def test_the_readme_tour_is_made_of_lines_the_docs_run() -> None:
    """The README's short tour cannot drift: each of its lines is in an example here."""
    run = {b.where: b for b in all_blocks() if b.lang in PYTHON | SHELL and not b.marker}
    ran = {same(line) for block in run.values() for line in block.text.splitlines()}
    tour = [b for b in blocks(ROOT / "README.md") if b.lang in PYTHON | SHELL]
    assert tour
    for block in tour:
        for line in block.text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert same(line) in ran, line


def same(line: str) -> str:
    """A line as the tour and the docs may both write it: no comment, any run id."""
    return re.sub(RUN_ID, "RUN", line.split("  #", maxsplit=1)[0].strip())


def setwise_help(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "setwise"), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
