"""The manual cannot rot: every code example of the site (docs/) and the README is checked.

- YAML examples validate as inputs (a section alone, inside the quickstart input);
- every shell command names a sub-command, flags and shipped files that exist, and the
  blocks marked ``<!-- test: run -->`` run;
- Python examples run, page by page, in a folder where the quickstart has run;
- the quickstart's summary and ``force_calls`` block are what the getting-started and
  hybrid-loop pages show;
- every input key has a description, so the generated input reference says what each does.

A block is skipped only where it says why: ``<!-- test: skip (reason) -->`` before its fence
(a long run, a cluster, data made elsewhere); its commands are still checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hybridmd.cli import build_parser
from hybridmd.cli import main as hybridmd
from hybridmd.config import ConfigError, RunConfig, SimulationConfig, TrainConfig, parse_config
from hybridmd.hybrid.summary import format_summary
from hybridmd.input_reference import input_reference, undocumented

from conftest import REPO

PAGES = sorted(p for p in (REPO / "docs").rglob("*.md") if "hooks" not in p.parts)
PAGES.append(REPO / "README.md")
_FENCE = re.compile(r"(?:^<!-- test: (?P<mark>[^\n]*?) -->\n)?^```(?P<lang>[\w-]*)\n"
                    r"(?P<body>.*?)^```$", re.S | re.M)
#: what is run as it is written; other programs in a command are checked to exist only
_SHIPPED = ("inputs/", "workflows/", "benchmarks/", "tests/data/")


@dataclass
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int
    lang: str
    mark: str
    body: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def _blocks(lang: str | tuple[str, ...]) -> list[Block]:
    langs = (lang,) if isinstance(lang, str) else lang
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in _FENCE.finditer(text):
            if m["lang"] in langs:
                found.append(Block(page, text[:m.start("body")].count("\n") + 1, m["lang"],
                                   (m["mark"] or "").strip(), m["body"]))
    return found


def _skip_marked(block: Block) -> None:
    if block.mark.startswith("skip"):
        reason = block.mark[4:].strip(" ()")
        assert reason, f"{block.name}: a skipped example says why: <!-- test: skip (why) -->"
        pytest.skip(reason)


def _ids(blocks: list[Block]) -> list[str]:
    return [b.name for b in blocks]


# ----------------------------------------------------------------------------- the quickstart


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder like a fresh clone's after `make run`: the shipped inputs, data and scripts,
    and runs/quickstart from `hybridmd run inputs/quickstart.yaml`."""
    work = tmp_path_factory.mktemp("docs")
    for name in ("inputs", "tests", "workflows", "benchmarks"):
        (work / name).symlink_to(REPO / name)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        assert hybridmd(["-q", "run", "inputs/quickstart.yaml"]) == 0
    finally:
        os.chdir(cwd)
    return work


def _shown(mark: str) -> str:
    (block,) = [b for b in _blocks("text") if b.mark == mark]
    return block.body


_NUMBER = re.compile(r"\d+(\.\d+)?")


def _shape(line: str) -> str:
    """A summary line with its figures masked: a chaotic trajectory's numbers may differ in the
    last digits on another CPU; the wording and the order of the lines may not."""
    return _NUMBER.sub("#", line)


def test_quickstart_prints_what_the_guide_shows(workdir: Path) -> None:
    """The summary the guide shows, line for line, as the quickstart prints it today (figures
    masked, the run's length exact)."""
    summary = json.loads((workdir / "runs" / "quickstart" / "summary.json").read_text())
    printed = format_summary(summary).splitlines()
    shown = _shown("quickstart-output").splitlines()
    assert [_shape(line) for line in shown] == [_shape(line) for line in printed]
    length = re.compile(r"\d+ segments of [\d.]+ fs \(\d+ fine frames\)")
    assert length.search(shown[0]).group() == length.search(printed[0]).group()


def test_force_calls_block_is_the_quickstarts(workdir: Path) -> None:
    """The hybrid-loop page's `force_calls` block has the quickstart's keys and adds up."""
    (block,) = _blocks("json")
    shown = json.loads("{" + block.body + "}")["force_calls"]
    summary = json.loads((workdir / "runs" / "quickstart" / "summary.json").read_text())
    assert shown.keys() == summary["force_calls"].keys()
    assert shown["full_simulation"] == summary["force_calls"]["full_simulation"]
    parts = ("simulation", "ml_segment_ends", "monitors", "checks", "training")
    assert shown["total"] == sum(shown[k] for k in parts)
    assert shown["saved_fraction"] == pytest.approx(1 - shown["total"] / shown["full_simulation"])


# ----------------------------------------------------------------------------- YAML


def _quickstart() -> dict:
    return yaml.safe_load((REPO / "inputs" / "quickstart.yaml").read_text())


@pytest.mark.parametrize("block", _blocks("yaml"), ids=_ids(_blocks("yaml")))
def test_yaml_example_is_a_valid_input(block: Block) -> None:
    """Paths are read as from an input in inputs/ (where the shipped inputs are)."""
    _skip_marked(block)
    data = yaml.safe_load(block.body)
    assert isinstance(data, dict), f"{block.name}: not a mapping of sections"
    if "data" in data:
        try:
            parse_config(data, TrainConfig, block.name, base_dir=REPO / "inputs")
        except ConfigError as err:  # the training data is made by a workflow, not shipped
            assert all(where.startswith("data.trajectories") for where, _ in err.problems), err
        return
    if "system" not in data:  # a section alone: in the quickstart input
        data = {**_quickstart(), **data}
    model = RunConfig if "hybrid" in data else SimulationConfig
    parse_config(data, model, block.name, base_dir=REPO / "inputs")


_COPIES = [b for b in _blocks("yaml") if b.mark.startswith("same-as ")]


@pytest.mark.parametrize("block", _COPIES, ids=_ids(_COPIES))
def test_yaml_copy_is_the_shipped_input(block: Block) -> None:
    """``<!-- test: same-as inputs/X.yaml -->``: the page shows that input, key for key."""
    shipped = yaml.safe_load((REPO / block.mark.removeprefix("same-as ")).read_text())
    assert yaml.safe_load(block.body) == shipped


# ----------------------------------------------------------------------------- shell


def _commands(body: str) -> list[list[str]]:
    """The simple commands of a shell block (continuations joined, comments dropped)."""
    text = body.replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, ";"]:
            if word in (";", "&&", "||", "&", "|") or word.endswith((";", "&")):
                if word.rstrip(";&") and word not in ("&&", "||", "|"):
                    command.append(word.rstrip(";&"))
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


def _check_command(words: list[str], where: str, made: set[str] = frozenset()) -> None:
    """The program and sub-command exist, the flags parse, the shipped files named exist
    (or are ``made`` by a redirection before)."""
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # OMP_NUM_THREADS=1 ...
        words = words[1:]
    program = words[0].removeprefix(".venv/bin/")
    args = words[1:]
    for arg in args:
        path = arg.split("=", 1)[-1]
        if path.startswith(_SHIPPED) and not any(c in path for c in "*?") and path not in made:
            assert (REPO / path).exists(), f"{where}: {path} does not exist"
    if program == "hybridmd":
        try:
            build_parser().parse_args(args)
        except SystemExit as stop:
            assert stop.code == 0, f"{where}: hybridmd {' '.join(args)} does not parse"
    elif program in ("mpiexec", "srun"):
        while args and args[0].startswith("-"):
            args = args[2:] if args[0] in ("-n", "-np") else args[1:]
        _check_command(args, where, made)
    elif program == "python":
        assert (REPO / args[0]).is_file(), f"{where}: no script {args[0]}"
    elif program == "make":
        targets = re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M)
        assert set(args) <= set(targets), f"{where}: make {args} is not a Makefile target"
    elif program.startswith(_SHIPPED) or program == "sbatch":
        script = args[0] if program == "sbatch" else program
        assert (REPO / script).is_file(), f"{where}: no script {script}"


_SHELL = _blocks(("bash", "sh"))


@pytest.mark.parametrize("block", _SHELL, ids=_ids(_SHELL))
def test_shell_commands_exist(block: Block) -> None:
    """Skipped blocks too: what they name must exist and parse."""
    commands = _commands(block.body)
    assert commands, f"{block.name}: no command"
    made: set[str] = set()
    for words in commands:
        if ">" in words:  # `... > FILE`: FILE exists from here on
            made.add(words[words.index(">") + 1])
            words = words[:words.index(">")]
        _check_command(words, block.name, made)


_RUN = [b for b in _SHELL if b.mark == "run"]


@pytest.mark.parametrize("block", _RUN, ids=_ids(_RUN))
def test_shell_examples_run(block: Block, workdir: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.body], cwd=workdir,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{block.name}:\n{done.stdout}\n{done.stderr}"


def test_run_blocks_are_marked() -> None:
    """A page's marks are `run`, `skip (why)` or the names the tests above look for."""
    marks = {b.mark for b in _blocks(("bash", "sh", "python", "yaml", "text", "json"))}
    assert {m for m in marks if not m.startswith(("skip", "same-as "))} <= {
        "", "run", "quickstart-output"}
    assert _COPIES, "no page shows a shipped input"
    assert _RUN, "no shell example runs"


# ----------------------------------------------------------------------------- Python


_PY_PAGES = sorted({b.page for b in _blocks("python")})


@pytest.mark.parametrize("page", _PY_PAGES, ids=[str(p.relative_to(REPO)) for p in _PY_PAGES])
def test_python_examples_run(page: Path, workdir: Path, monkeypatch, one_thread) -> None:
    """A page's examples in order, in one namespace, where the quickstart has run."""
    monkeypatch.chdir(workdir)
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in (b for b in _blocks("python") if b.page == page):
        if block.mark.startswith("skip"):
            continue
        exec(compile(block.body, block.name, "exec"), namespace)  # noqa: S102
        ran += 1
    assert ran, f"{page}: every Python example is skipped"


# ----------------------------------------------------------------------------- links


def test_readme_links_exist() -> None:
    """The README links into the site's sources; mkdocs --strict checks the site's own."""
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", (REPO / "README.md").read_text())
    local = [link for link in links if "://" not in link]
    assert local, "the README links into the site"
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_figures_are_made_by_scripts() -> None:
    """Every image of the site is named in a script of the repository (workflows/,
    benchmarks/) or in a command on its page that writes it (e.g. ``--plot FILE``)."""
    scripts = "\n".join(p.read_text() for folder in ("workflows", "benchmarks")
                        for p in (REPO / folder).glob("*.py"))
    images = 0
    for page in PAGES:
        text = page.read_text()
        for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            name = Path(link).name
            images += 1
            elsewhere = text.replace(f"({link})", "")
            assert name in scripts or name in elsewhere, f"{page.name}: no script makes {name}"
    assert images, "the site shows figures"


# ----------------------------------------------------------------------------- the reference


def test_every_input_key_is_described() -> None:
    assert undocumented() == []


def test_input_reference_has_every_key() -> None:
    """Each section's table lists its keys, with the section's anchor."""
    from hybridmd.input_reference import COMMANDS, all_sections, anchor

    text = input_reference()
    for model in all_sections():
        if model not in COMMANDS.values():
            assert f"{{#{anchor(model)}}}" in text, f"{model.__name__} has no section"
        for name in model.model_fields:
            assert f"| `{name}` |" in text, f"{model.__name__}.{name} missing"


@pytest.mark.parametrize("page", ["docs/reference/inputs.md", "docs/reference/cli.md"])
def test_generated_pages_are_up_to_date(page: str) -> None:
    """The committed input and command-line references (read in a clone and on GitHub) are
    what the code writes now: after a change, `python -m hybridmd.input_reference`."""
    import sys

    from hybridmd.input_reference import PAGES, filled

    text = (REPO / page).read_text()
    written = re.search(r"<!-- written with Python (\d+\.\d+) -->", text)
    here = ".".join(map(str, sys.version_info[:2]))
    if written and written.group(1) != here:
        pytest.skip(f"argparse of Python {written.group(1)} wrote it, this is {here}")
    assert f"<!-- end generated: {PAGES[page]} -->" in text
    assert filled(text, PAGES[page]) == text, (
        f"{page} is out of date: run `python -m hybridmd.input_reference`")


def test_cli_reference_has_every_sub_command() -> None:
    from hybridmd.input_reference import cli_reference

    text = cli_reference()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, cmd in sub.choices.items():
        assert f"## `hybridmd {name}`" in text
        for action in cmd._actions:
            assert all(flag in text for flag in action.option_strings), (name, action)


def test_the_page_writer_answers_help_without_writing(capsys) -> None:
    from hybridmd.input_reference import main

    before = {page: (REPO / page).stat().st_mtime_ns
              for page in ("docs/reference/inputs.md", "docs/reference/cli.md")}
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert "Write docs/reference/inputs.md" in capsys.readouterr().out
    assert before == {page: (REPO / page).stat().st_mtime_ns for page in before}
