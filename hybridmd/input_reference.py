"""The input reference of the documentation, written from the pydantic models of
:mod:`hybridmd.config` (so it cannot drift from what the commands accept), and the
command-line reference, written from the ``hybridmd`` argument parser.

Both are committed in their pages (``docs/reference/inputs.md`` and ``cli.md``, between
``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``), so that they read in a
clone and on GitHub too: ``python -m hybridmd.input_reference`` writes them again after a
change, ``tests/test_docs.py`` fails when a page is out of date or a key has no description,
and ``docs/hooks/generated.py`` fills them afresh when the site is built.
"""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from hybridmd import config

#: the inputs of the commands, in the order the reference lists them
COMMANDS: dict[str, type[BaseModel]] = {
    "simulate": config.SimulationConfig,
    "run": config.RunConfig,
    "train": config.TrainConfig,
    "serve": config.ServeConfig,
}


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (``X | None`` gives ``[X, None]``), unwrapping Annotated."""
    if get_origin(annotation) is Annotated:
        return _members(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [annotation]


def sections_of(annotation: Any) -> list[type[BaseModel]]:
    """The section models a key holds (several for a section chosen by its ``type``)."""
    found = []
    for member in _members(annotation):
        if get_origin(member) is list:
            found += sections_of(get_args(member)[0])
        elif isinstance(member, type) and issubclass(member, BaseModel):
            found.append(member)
    return found


def _type_name(annotation: Any) -> str:
    names = []
    for member in _members(annotation):
        if member is type(None):
            continue
        if get_origin(member) is Literal:
            names.append(" \\| ".join(f"`{v}`" for v in get_args(member)))
        elif get_origin(member) is list:
            names.append(f"list of {_type_name(get_args(member)[0])}")
        elif get_origin(member) is dict:
            names.append("mapping")
        elif isinstance(member, type) and issubclass(member, BaseModel):
            tag = _type_tag(member).strip(" ()")
            names.append(f"[{tag or 'section'}](#{anchor(member)})")
        elif member is Path:
            names.append("path")
        elif isinstance(member, type):
            names.append({"str": "text", "int": "integer", "float": "number",
                          "bool": "true \\| false"}.get(member.__name__, member.__name__))
        else:
            names.append(str(member))
    return " or ".join(dict.fromkeys(names))


def _limits(info: FieldInfo) -> str:
    words = {Gt: ("gt", "> {}"), Ge: ("ge", "≥ {}"), Lt: ("lt", "< {}"), Le: ("le", "≤ {}")}
    out = []
    for item in info.metadata:
        for kind, (attr, text) in words.items():
            if isinstance(item, kind):
                out.append(text.format(getattr(item, attr)))
        if isinstance(item, MinLen):
            out.append(f"at least {item.min_length}")
    return ", ".join(out)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        return "its defaults"
    if info.default is None or info.default is PydanticUndefined:
        return "none"
    value = info.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def anchor(model: type[BaseModel]) -> str:
    """The section's anchor on the reference page."""
    return model.__name__.lower()


def is_discriminator(name: str, info: FieldInfo) -> bool:
    """The ``type`` key that picks one of several sections; its value is its description."""
    return name == "type" and get_origin(info.annotation) is Literal


def undocumented() -> list[str]:
    """Every key of every input without a description, and every section without a docstring
    (as ``Section.key``): what the test of the reference asserts is empty."""
    missing = []
    for model in all_sections():
        if not (model.__doc__ or "").strip() or model.__doc__ == config.Strict.__doc__:
            missing.append(model.__name__)
        missing += [f"{model.__name__}.{name}" for name, info in model.model_fields.items()
                    if not info.description and not is_discriminator(name, info)]
    return missing


def all_sections() -> list[type[BaseModel]]:
    """Every model an input can hold, each once, in the order a reader meets them."""
    seen: dict[type[BaseModel], None] = {}

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen[model] = None
        for info in model.model_fields.values():
            for section in sections_of(info.annotation):
                visit(section)

    for model in COMMANDS.values():
        visit(model)
    return list(seen)


def _paths() -> dict[type[BaseModel], list[tuple[str, str]]]:
    """Where each section sits in the inputs, as (key path, command), e.g.
    (``hybrid.switch``, ``run``)."""
    where: dict[type[BaseModel], list[tuple[str, str]]] = {}

    def visit(model: type[BaseModel], prefix: str, command: str) -> None:
        for name, info in model.model_fields.items():
            for section in sections_of(info.annotation):
                entry = (f"{prefix}{name}", command)
                if entry not in where.setdefault(section, []):
                    where[section].append(entry)
                visit(section, f"{prefix}{name}.", command)

    for command, model in COMMANDS.items():
        visit(model, "", command)
    return where


def _type_tag(model: type[BaseModel]) -> str:
    """`` (type: dft)`` for a section picked by its ``type``, else nothing."""
    info = model.model_fields.get("type")
    if info is None or not is_discriminator("type", info):
        return ""
    return f" (type: {get_args(info.annotation)[0]})"


def _escape(text: str) -> str:
    """Plain text safe in a markdown table cell (code spans kept as they are)."""
    parts = " ".join(text.split()).split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        for char, code in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("*", "\\*"),
                           ("_", "\\_")):
            parts[i] = parts[i].replace(char, code)
    return "`".join(parts).replace("|", "\\|")


def _table(model: type[BaseModel]) -> list[str]:
    lines = ["| key | type | default | allowed | what |", "|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        description = info.description or ""
        if is_discriminator(name, info):
            description = "picks this section"
        description = _escape(description)
        lines.append(f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | "
                     f"{_limits(info)} | {description} |")
    return lines


def input_reference() -> str:
    """The markdown of the input reference: the commands' inputs, then every section."""
    paths = _paths()
    out = []
    for command, model in COMMANDS.items():
        out += [f"## `hybridmd {command}` input {{#{command}-input}}", "",
                _escape(model.__doc__ or ""), "", *_table(model), ""]
    out += ["## Sections", ""]
    sections = [m for m in all_sections() if m not in COMMANDS.values()]
    headings = {m: " / ".join(dict.fromkeys(f"`{key}`" for key, _ in paths.get(m, [])))
                + _type_tag(m) for m in sections}
    for model in sections:
        used = ", ".join(dict.fromkeys(command for _, command in paths.get(model, [])))
        heading = headings[model]
        if list(headings.values()).count(heading) > 1:  # e.g. `output` of simulate and of run
            heading += f" ({used})"
        doc = _escape(model.__doc__ or "")
        out += [f"### {heading} {{#{anchor(model)}}}", "", f"{doc} *Used by: {used}.*", "",
                *_table(model), ""]
    return "\n".join(out)


def cli_reference() -> str:
    """The markdown of the command-line reference: ``--help`` of every sub-command."""
    from hybridmd.cli import build_parser

    def formatter(prog: str) -> argparse.HelpFormatter:  # the same width on every terminal
        return argparse.HelpFormatter(prog, width=92)

    parser = build_parser()
    parser.prog = "hybridmd"
    # argparse's layout differs between Python versions (the page says which wrote it)
    version = ".".join(map(str, sys.version_info[:2]))
    parser.formatter_class = formatter
    out = [f"<!-- written with Python {version} -->", "", "## `hybridmd`", "", "```text",
           parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, cmd in sub.choices.items():
        cmd.formatter_class = formatter
        out += [f"## `hybridmd {name}`", "", "```text", cmd.format_help().rstrip(), "```", ""]
    return "\n".join(out)


#: the generated pages (relative to the repository) and what each holds
PAGES = {"docs/reference/inputs.md": "inputs", "docs/reference/cli.md": "cli"}


def filled(text: str, name: str) -> str:
    """``text`` with its generated part ``name`` (``inputs`` or ``cli``) written afresh, between
    ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``."""
    make = {"inputs": input_reference, "cli": cli_reference}[name]
    start, end = f"<!-- generated: {name} -->", f"<!-- end generated: {name} -->"
    if start not in text:
        return text
    head, _, rest = text.partition(start)
    _, found, tail = rest.partition(end)
    return f"{head}{start}\n\n{make()}\n{end}" + (tail if found else "\n")


def main(argv: list[str] | None = None) -> None:
    """Write the generated pages of this checkout afresh."""
    argparse.ArgumentParser(
        prog="python -m hybridmd.input_reference",
        description="Write docs/reference/inputs.md and cli.md afresh from the code (run it "
        "after changing an input section or a command's flags).").parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    for page, name in PAGES.items():
        path = root / page
        path.write_text(filled(path.read_text(), name))
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
