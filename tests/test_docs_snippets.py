"""Every code block of README.md and docs/*.md is run or checked against the product (issue 13, item 8).

The blocks are found when the tests are collected, so a block added to a page is tested without touching this
file. Each test is named after its block, `FILE:LINE` (the line of its opening fence):

- ```python: run as a script in a fresh process (cwd a temporary folder, NASAPP_HOME inside it, a timeout),
  and checked by ruff's pyflakes rules, so a name the block uses and does not import or define fails even in
  a function body that running it never enters.
- ```toml: parsed with tomllib. A whole job file (it has `name` or a `[space]` table) must pass nasapp's own
  validation (`parse_job`, then `validate_job`) in a temporary folder, where a relative `data.path` gets a
  small stand-in of its kind. Any other block is a fragment of a job file: its tables, laid over a minimal job,
  must pass the same validation.
- ```sh / ```bash / ```console, and unlabelled blocks whose lines are all `nasapp` commands: every `nasapp`
  command line must name an existing command and only options that command accepts (checked against the
  typer app itself); `make TARGET` must name a Makefile target; repository paths must exist; `NASAPP_*`
  variables must be read somewhere. The cheap read-only commands among them (`spaces`, `strategies`,
  `plugins`, any `--help`) are run for real against a temporary store. Searches are never run here.
- Other blocks (program output, the code map) are text and are not checked.

Beyond the blocks: every `nasapp ...` in inline code must name a real command and real options; every file
name in inline code must be a file of the repository, a name the product's code uses (what it writes, such
as `report.json` or `latency_cache.log`), or one of USER_FILES (a user's own files in examples); and every
module a text block names (DEVELOPING.md's map of the code) must exist.

A block that cannot run by design says so in the Markdown, in an HTML comment just before its fence:

    <!-- snippet: skip (needs a finished search's trial and its export) -->     skipped, with that reason
    <!-- snippet: tested by tests/test_api.py::test_the_docs_example_runs -->  run by that test (checked to exist)
    <!-- snippet: fragment of a job file -->                                    TOML: laid over a minimal job
    <!-- snippet: slow (builds 21 models) -->                                   marked slow

Skipped Python blocks still get the pyflakes check.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import NASAPP, NO_TORCH, stop_process

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PRODUCT_DIRS = ("app", "engine", "store", "nasapp")
REPO_DIRS = (*PRODUCT_DIRS, "tests", "bench", "docs", "examples", ".ci")
PYTHON_TIMEOUT_S = 120

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)[^`]*$")
DIRECTIVE = re.compile(r"^\s*<!--\s*snippet:\s*(?P<text>.*?)\s*-->\s*$")
LANGS = {"python": "python", "py": "python", "sh": "shell", "bash": "shell", "shell": "shell",
         "console": "shell", "toml": "toml"}

# A job file's tables that a fragment is laid over: the smallest job that validates.
BASE_JOB = {"name": "doc-snippet", "space": {"prebuilt": "mnasnet"}, "data": {"kind": "digits"}}

# File names the docs use for a user's own files (not the product's, not the repository's).
USER_FILES = {
    "my_space.py", "train.py", "job.toml", "proxy.toml", "best.json", "example.db", "curve.svg", "file.svg",
    "time_on_phone.sh", "nb201_cifar10.csv", "nb201_reference_params.csv",
    "file.py",  # the placeholder of a "file.py:name" reference
    "chart.svg",  # not a file: a chart's `svg` attribute (docs/api.md)
}

# The read-only commands a shell block may run for real.
SAFE_TO_RUN = {"spaces", "strategies", "plugins"}


@dataclass(frozen=True)
class Snippet:
    page: str  # relative to the repository
    line: int  # of the opening fence
    kind: str  # python, shell, toml or text
    code: str
    directives: tuple[str, ...]  # the <!-- snippet: ... --> comments just before the fence

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def directive(self, word: str) -> str | None:
        """The directive that starts with `word` ("skip", "slow", ...), or None."""
        return next((d for d in self.directives if d.split(None, 1)[0].lower() == word), None)


def _kind(info: str, code: str) -> str:
    if info:
        return LANGS.get(info.lower(), "text")
    lines = [line for line in code.splitlines() if line.strip()]
    commands = [line for line in lines if not line[0].isspace()]
    if commands and all(line.startswith("nasapp") for line in commands) and \
            all(line.lstrip().startswith("#") for line in lines if line[0].isspace()):
        return "shell"  # an unlabelled block of nasapp commands (continuation lines are comments)
    return "text"


def extract(page: Path) -> list[Snippet]:
    """The fenced code blocks of a Markdown page (fences may be indented, as in a list item)."""
    lines = page.read_text().splitlines()
    found: list[Snippet] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (lines[j].strip().startswith(fence) and set(lines[j].strip()) == {fence[0]}):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        directives: list[str] = []
        k = i - 1
        while k >= 0 and (match := DIRECTIVE.match(lines[k])):
            directives.insert(0, match["text"])
            k -= 1
        code = "\n".join(body) + "\n"
        found.append(Snippet(str(page.relative_to(ROOT)), i + 1, _kind(opening["info"], code), code,
                             tuple(directives)))
        i = j + 1
    return found


SNIPPETS = [snippet for page in PAGES for snippet in extract(page)]


def _params(kind: str) -> list:
    params = []
    for snippet in SNIPPETS:
        if snippet.kind == kind:
            marks = [pytest.mark.slow] if snippet.directive("slow") else []
            params.append(pytest.param(snippet, id=snippet.id, marks=marks))
    return params


def test_the_pages_have_snippets_of_every_kind():
    kinds = {kind: sum(s.kind == kind for s in SNIPPETS) for kind in ("python", "toml", "shell", "text")}
    assert all(kinds[kind] for kind in ("python", "toml", "shell")), kinds
    unknown = [f"{s.id}: {d}" for s in SNIPPETS for d in s.directives
               if d.split(None, 1)[0].lower() not in ("skip", "tested", "fragment", "slow")]
    assert not unknown, f"unknown <!-- snippet: ... --> directives: {unknown}"


# ---- Python ----------------------------------------------------------------------------------------------------

def _skip_or_delegate(snippet: Snippet) -> None:
    """Honour `skip (why)` and `tested by tests/FILE.py::NAME` (that test must exist and read the page)."""
    delegated = snippet.directive("tested")
    if delegated:
        target = delegated.split("by", 1)[1].strip()
        file, _, name = target.partition("::")
        test_file = ROOT / file
        assert test_file.is_file() and f"def {name}(" in test_file.read_text(), \
            f"{snippet.id}: says it is tested by {target}, which does not exist"
        assert Path(snippet.page).name in test_file.read_text(), \
            f"{snippet.id}: {file} never reads {snippet.page}"
        pytest.skip(f"run by {target}")
    skip = snippet.directive("skip")
    if skip:
        pytest.skip(f"{snippet.id}: {skip}")


@functools.cache
def _pyflakes_findings(folder: str) -> dict[str, list[str]]:
    """ruff's pyflakes rules over every Python block at once: {snippet id: findings}."""
    ruff = Path(sys.executable).parent / "ruff"
    blocks = {f"snippet_{n}.py": s for n, s in enumerate(s for s in SNIPPETS if s.kind == "python")}
    for name, snippet in blocks.items():
        (Path(folder) / name).write_text(snippet.code)
    result = subprocess.run([str(ruff), "check", "--isolated", "--no-cache", "--select", "F", "--target-version",
                             "py311", "--output-format", "json", "--exit-zero", folder],
                            capture_output=True, text=True, timeout=60)
    findings: dict[str, list[str]] = {}
    for item in json.loads(result.stdout):
        snippet = blocks[Path(item["filename"]).name]
        row = item["location"]["row"]
        findings.setdefault(snippet.id, []).append(f"line {snippet.line + row}: {item['code']} {item['message']}")
    return findings


@pytest.mark.parametrize("snippet", _params("python"))
def test_python_snippet_names_only_what_it_imports_or_defines(snippet, tmp_path_factory):
    compile(snippet.code, snippet.id, "exec")  # a syntax error names the block
    if not (Path(sys.executable).parent / "ruff").exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    folder = tmp_path_factory.getbasetemp() / "doc-snippets-pyflakes"
    folder.mkdir(exist_ok=True)
    problems = _pyflakes_findings(str(folder)).get(snippet.id, [])
    assert not problems, f"{snippet.id}: " + "; ".join(problems)


@dataclass
class _Run:
    process: subprocess.Popen
    folder: Path
    started: float


def _start(snippet: Snippet, folder: Path) -> _Run:
    """Start a block as a script in `folder`, in its own session (so its children can be ended with it)."""
    folder.mkdir(parents=True)
    (folder / "snippet.py").write_text(snippet.code)
    env = {**os.environ, **NO_TORCH, "NASAPP_HOME": str(folder / "home")}
    with open(folder / "output.txt", "w") as output:  # a file, not a pipe: nobody reads it while it runs
        process = subprocess.Popen([sys.executable, "snippet.py"], cwd=folder, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return _Run(process, folder, time.monotonic())


@pytest.fixture(scope="module")
def python_runs(request, tmp_path_factory):
    """Every Python block this session will run, started at once (they wait on imports, subprocesses and
    each other's cores, so side by side they take about as long as the slowest); each test waits for its own."""
    wanted = [item.callspec.params["snippet"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_python_snippet_runs"]
    base = tmp_path_factory.mktemp("doc-snippets-run")
    runs = {s.id: _start(s, base / f"snippet-{n}") for n, s in enumerate(wanted)
            if not (s.directive("skip") or s.directive("tested"))}
    yield runs
    for run in runs.values():
        stop_process(run.process)  # and whatever it started that is still running


@pytest.mark.parametrize("snippet", _params("python"))
def test_python_snippet_runs(snippet, python_runs):
    _skip_or_delegate(snippet)
    run = python_runs[snippet.id]
    try:
        run.process.wait(timeout=max(1.0, PYTHON_TIMEOUT_S - (time.monotonic() - run.started)))
    except subprocess.TimeoutExpired:
        pytest.fail(f"{snippet.id} ran over {PYTHON_TIMEOUT_S} s")
    finally:
        stop_process(run.process)  # and whatever it started that is still running
    output = (run.folder / "output.txt").read_text(errors="replace")
    assert run.process.returncode == 0, f"{snippet.id} failed (exit {run.process.returncode}):\n{output[-3000:]}"


# ---- TOML ------------------------------------------------------------------------------------------------------

def _stand_in_data(data: dict, folder: Path) -> None:
    """A small data set of the block's kind where its relative `data.path` points (the user's own data)."""
    path = data.get("path")
    if not path or Path(os.path.expanduser(path)).is_absolute() or (folder / path).exists():
        return
    target = folder / path
    kind = data.get("kind")
    if kind == "imagefolder":
        from PIL import Image

        for label in ("cat", "dog"):
            (target / label).mkdir(parents=True)
            for n in range(6):
                Image.new("RGB", (8, 8), (40 * n, 100 if label == "cat" else 200, 0)).save(target / label / f"{n}.png")
    elif kind == "npz":
        import numpy as np

        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez(target, x=np.random.default_rng(0).random((12, 4)).astype("float32"), y=np.arange(12) % 2)
    elif kind == "csv":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("a,b,label\n" + "".join(f"{n},{n * 2},{n % 2}\n" for n in range(12)))


@pytest.mark.parametrize("snippet", _params("toml"))
def test_toml_snippet_is_a_valid_job_file_or_part_of_one(snippet, tmp_path):
    _skip_or_delegate(snippet)
    from nasapp.engine.errors import NasappError
    from nasapp.engine.jobs.spec import parse_job
    from nasapp.engine.jobs.validation import validate_job

    try:
        tables = tomllib.loads(snippet.code)
    except tomllib.TOMLDecodeError as error:
        pytest.fail(f"{snippet.id}: not valid TOML: {error}")
    whole = ("name" in tables or "space" in tables) and not snippet.directive("fragment")
    raw = tables if whole else {**BASE_JOB, **tables}
    if isinstance(raw.get("data"), dict):
        _stand_in_data(raw["data"], tmp_path)
    try:
        validate_job(parse_job(raw, source=snippet.id, base=tmp_path))
    except NasappError as error:
        what = "the job file" if whole else "the fragment, laid over a minimal job,"
        pytest.fail(f"{snippet.id}: {what} does not validate: {error}")


# ---- shell -----------------------------------------------------------------------------------------------------

@functools.cache
def _cli():
    """The `nasapp` command tree, from the typer app itself: built once (typer's click commands, duck-typed:
    typer 0.2x carries its own copy of click, so its groups are no `click.Group`)."""
    import typer.main

    from nasapp.app.cli import app

    return typer.main.get_command(app)


def check_nasapp_args(args: list[str], check_arguments: bool = True) -> tuple[list[str], list[str]]:
    """(the command path, problems) for the arguments of one `nasapp` command line."""
    command, path, problems, positionals, allowed = _cli(), [], [], 0, 0
    i = 0
    while i < len(args):
        token = args[i]
        if token.startswith("-") and token != "-":
            name, eq, _ = token.partition("=")
            if name in ("--help", "-h") and name in ("--help", *getattr(command, "context_settings", {})
                                                        .get("help_option_names", [])):
                i += 1
                continue
            option = next((p for p in command.params if p.param_type_name == "option"
                           and name in (*p.opts, *p.secondary_opts)), None)
            if option is None:
                problems.append(f"`nasapp {' '.join(path)}` has no option {name}")
            elif not eq and not option.is_flag and not option.count:
                i += max(1, option.nargs)
        elif hasattr(command, "commands") and not positionals:
            sub = command.commands.get(token)
            if sub is None:
                problems.append(f"`nasapp {' '.join(path)}` has no command {token!r}"
                                f" (it has {', '.join(sorted(command.commands))})")
                return path, problems
            command = sub
            path.append(token)
        else:
            positionals += 1
        i += 1
    if hasattr(command, "commands") and not command.invoke_without_command:
        problems.append(f"`nasapp {' '.join(path)}` needs a command ({', '.join(sorted(command.commands))})")
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    allowed = float("inf") if any(p.nargs < 0 for p in arguments) else sum(p.nargs for p in arguments)
    if check_arguments and positionals > allowed:
        problems.append(f"`nasapp {' '.join(path)}` takes {allowed} argument(s), the line gives {positionals}")
    return path, problems


@functools.cache
def _repo_text() -> str:
    """The repository's Python code, for names that must be read somewhere (NASAPP_* variables)."""
    files = [p for d in (*REPO_DIRS, "") for p in (ROOT / d).glob("*.py" if not d else "**/*.py")]
    return "\n".join(p.read_text(errors="replace") for p in files if ".venv" not in p.parts)


def _repo_path_problem(token: str) -> str | None:
    """A token that names a path in this repository (examples/x.toml, tests/y.py::test) must exist."""
    path = token.split("::", 1)[0].split(":", 1)[0].rstrip("/")
    head = path.split("/", 1)[0]
    if head not in REPO_DIRS or "/" not in path or any(c in path for c in "*<>{}[]") \
            or Path(path).name.startswith("my_"):
        return None
    return None if (ROOT / path).exists() else f"{token}: no such file in the repository"


def _command_lines(code: str) -> list[list[str]]:
    """Each simple command of a shell block as a list of words (comments, prompts and output dropped)."""
    commands = []
    text = code.replace("\\\n", " ")
    console = any(line.startswith("$ ") for line in text.splitlines())
    for line in text.splitlines():
        if console:
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        try:
            words = shlex.split(line, comments=True)
        except ValueError as error:
            commands.append(["<unparsable>", f"{line!r}: {error}"])
            continue
        current: list[str] = []
        for word in [*words, ";"]:
            if word in (";", "&&", "||", "|"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text() if (ROOT / "Makefile").exists() else ""
    return {m.group(1) for m in re.finditer(r"^([\w.-]+)\s*:(?!=)", text, re.M)}


@pytest.mark.parametrize("snippet", _params("shell"))
def test_shell_snippet_commands_exist_and_the_cheap_ones_run(snippet, tmp_path):
    _skip_or_delegate(snippet)
    problems: list[str] = []
    to_run: list[list[str]] = []
    for words in _command_lines(snippet.code):
        if words[0] == "<unparsable>":
            problems.append(f"cannot parse {words[1]}")
            continue
        while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):  # VAR=value before the program
            variable = words.pop(0).split("=", 1)[0]
            if variable.startswith("NASAPP_") and variable not in _repo_text():
                problems.append(f"{variable}: nothing in the repository reads it")
        if not words:
            continue
        program, args = words[0], words[1:]
        problems += [p for word in words if (p := _repo_path_problem(word))]
        if Path(program).name == "nasapp":
            path, found = check_nasapp_args(args)
            problems += found
            if not found and (path[:1] and path[0] in SAFE_TO_RUN or "--help" in args):
                to_run.append(args)
        elif program == "make":
            problems += [f"make {t}: no such target in the Makefile" for t in args
                         if not t.startswith("-") and "=" not in t and t not in _makefile_targets()]
    assert not problems, f"{snippet.id}:\n  " + "\n  ".join(problems)

    def run(args: list[str]) -> tuple[list[str], subprocess.CompletedProcess]:
        env = {**os.environ, "NASAPP_HOME": str(tmp_path / "home")}
        return args, subprocess.run([str(NASAPP), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                                    timeout=120)

    with ThreadPoolExecutor(max_workers=4) as pool:
        for args, result in pool.map(run, to_run):
            assert result.returncode == 0, \
                f"{snippet.id}: `nasapp {' '.join(args)}` failed ({result.returncode}):\n{result.stderr[-2000:]}"


# ---- inline code: commands and file names ---------------------------------------------------------------------

INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
EXTENSIONS = "py|toml|json|jsonl|log|onnx|db|pt|pth|csv|npz|svg|sh|txt|md"
FILE_NAME = re.compile(rf"^[\w$~./<>*-]*?[\w*-]+\.(?:{EXTENSIONS})$")


def _prose(page: Path) -> list[tuple[int, str]]:
    """(line number, text) of a page's lines outside fenced blocks."""
    rows, fence = [], None
    for number, line in enumerate(page.read_text().splitlines(), 1):
        opening = FENCE.match(line)
        if fence is None and opening:
            fence = opening["fence"]
        elif fence is not None and line.strip().startswith(fence) and set(line.strip()) == {fence[0]}:
            fence = None
        elif fence is None:
            rows.append((number, line))
    return rows


@functools.cache
def _product_text() -> str:
    return "\n".join(p.read_text(errors="replace") for d in PRODUCT_DIRS for p in (ROOT / d).rglob("*.py"))


@functools.cache
def _repo_file_names() -> set[str]:
    names = set()
    for d in (*REPO_DIRS, ""):
        for p in ((ROOT / d).rglob("*") if d else ROOT.glob("*")):
            names.add(p.name)
    return names


def _file_name_problem(name: str) -> str | None:
    if any(c in name for c in "*") or name.startswith("../"):
        return None  # a pattern, or a file outside the repository (the shared benchmark tables)
    if (problem := _repo_path_problem(name)) or name.split("/", 1)[0] in REPO_DIRS:
        return problem
    base = name.rsplit("/", 1)[-1]
    stem, _, ext = base.rpartition(".")
    product = _product_text()
    if base in _repo_file_names() or base in product or base in USER_FILES:
        return None
    if re.search(rf"[\"']{re.escape(stem)}\.(?:{EXTENSIONS})[\"']", product) and f'".{ext}"' in product:
        return None  # derived from a name the product uses (latency_cache.json -> latency_cache.log)
    return (f"{name}: no file of the repository, no name in the product's code (app/, engine/, store/, nasapp/),"
            f" and not one of USER_FILES in {Path(__file__).name}")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_inline_commands_and_file_names_are_real(page):
    problems = []
    for number, line in _prose(page):
        for code in INLINE.findall(line):
            code = code.strip()
            where = f"{page.relative_to(ROOT)}:{number}"
            if code.startswith("nasapp ") or code == "nasapp":
                try:
                    words = [w for w in shlex.split(code.replace("[", " ").replace("]", " ")) if w != "..."]
                except ValueError:
                    continue
                problems += [f"{where}: {p}" for p in check_nasapp_args(words[1:], check_arguments=False)[1]]
            elif FILE_NAME.match(code) and (problem := _file_name_problem(code)):
                problems.append(f"{where}: {problem}")
    for snippet in SNIPPETS:  # a text block such as DEVELOPING.md's map of the code: its modules exist
        if snippet.page == str(page.relative_to(ROOT)) and snippet.kind == "text":
            for name in re.findall(r"(?<![\w*/.-])[\w/-]+\.py\b", snippet.code):
                base = name.rsplit("/", 1)[-1]
                if base not in _repo_file_names() and base not in USER_FILES and not base.startswith("my_"):
                    problems.append(f"{snippet.id}: {name}: no such file in the repository")
    assert not problems, "\n".join(problems)
