"""What every input section shares: the strict base model, the error that lists every problem
with its key and a hint, the path checks, and reading and validating a YAML input.

File paths in an input are resolved relative to the directory of the YAML file.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Tag, ValidationError, ValidationInfo

from hybridmd.data import interpolator_names
from hybridmd.errors import InputError


class ConfigError(InputError):
    """An input that cannot be run; the message lists every problem with its key and a hint."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"invalid input {source}:"]
        lines += [f"  - {where}: {what}" for where, what in problems]
        super().__init__("\n".join(lines))


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """``path`` with ``~`` expanded, relative to the input file's folder when not absolute."""
    base = (info.context or {}).get("base_dir")
    path = Path(path).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def existing_file(path: Path, info: ValidationInfo) -> Path:
    """The resolved path of a file the input reads; a ValueError when it is not one."""
    path = resolve_path(path, info)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file")
    if not path.is_file():
        raise ValueError(
            f"file not found: {path} (relative paths are taken from the input file's folder)"
        )
    return path


def known_or_file(spec: str, names: list[str], what: str, info: ValidationInfo,
                  classical: tuple[str, ...] = ()) -> str:
    """A shipped name, a classical method, or an existing file (resolved to its path)."""
    if spec in names or spec in classical:
        return spec
    path = resolve_path(Path(spec), info)
    if not path.is_file():
        known = ", ".join([*classical, *names]) or "none"
        raise ValueError(f"no {what} file {path} and no shipped {what} named {spec!r} "
                         f"(known: {known})")
    return str(path)


def interpolator_spec(spec: str, info: ValidationInfo) -> str:
    """An interpolator: a shipped network's name, a checkpoint file or a classical spline."""
    return known_or_file(spec, interpolator_names(), "interpolator", info,
                         ("linear", "cubic", "quintic"))


M = TypeVar("M", bound=BaseModel)

_HINTS = {
    "missing": "this key is required: add it",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "model_type": "this key holds a section of keys, not a single value",
    "dict_type": "this key holds a section of keys, not a single value",
}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation can hold (unwrapping Optional and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _tag(section: type[BaseModel]) -> Any:
    field = section.model_fields.get("type")
    args = getattr(field.annotation, "__args__", ()) if field else ()
    return args[0] if len(args) == 1 else None


def _tagged(annotation: Any) -> dict[str, list[type[BaseModel]]]:
    """The members of a union with a callable discriminator, by their ``Tag``."""
    found: dict[str, list[type[BaseModel]]] = {}
    for arg in get_args(annotation):
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, Tag):
                found[meta.tag] = _models_in(get_args(arg)[0])
    return found


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, list[str]]:
    """Readable key path of an error location and the keys allowed in its section.

    Pydantic puts the discriminator value of a tagged union into the location
    (``calculator.sgdml.model``, ``dynamics.initial_momenta.file.file``); it is dropped from
    the path users see.
    """
    sections: list[type[BaseModel]] = [model]
    tags: dict[str, list[type[BaseModel]]] = {}
    shown: list[str] = []
    for i, part in enumerate(loc):
        if part in tags:  # the tag of a callable-discriminated union: not a key
            sections, tags = tags[part], {}
            continue
        shown.append(str(part))
        if i == len(loc) - 1:
            if i and any(_tag(s) == part for s in sections):
                shown.pop()  # a section's own check: reported at the section
            break
        if any(part in s.model_fields for s in sections):
            annotations = [s.model_fields[part].annotation for s in sections
                           if part in s.model_fields]
            tags = {k: v for a in annotations for k, v in _tagged(a).items()}
            sections = [m for a in annotations for m in _models_in(a)]
        elif any(_tag(s) == part for s in sections):
            sections = [s for s in sections if _tag(s) == part]
            shown.pop()
    allowed = sorted({k for s in sections for k in s.model_fields})
    return ".".join(shown) or "(top level)", allowed


def _describe(model: type[BaseModel], err: dict[str, Any]) -> tuple[str, str]:
    where, allowed = _walk(model, tuple(err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(where.rsplit(".", 1)[-1], allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
        return where, f"unknown key; {hint}"
    if kind == "union_tag_invalid":
        return where, f"unknown type {err['ctx']['tag']!r}; known: {err['ctx']['expected_tags']}"
    if kind == "union_tag_not_found":
        kinds = "ase | ipi" if where.startswith("engine") else "sgdml | dft | xtb | ase"
        return where, f"missing `type:`; say which kind, e.g. type: {kinds}"
    if kind == "literal_error":
        return where, f"got {err['input']!r}; allowed: {err['ctx']['expected']}"
    msg = err["msg"].removeprefix("Value error, ")
    hint = _HINTS.get(kind)
    shown = kind == "missing" or isinstance(err.get("input"), dict) or kind == "value_error"
    got = "" if shown else f" (got {err['input']!r})"
    return where, f"{msg}{got}" + (f"; {hint}" if hint else "")


def parse_config(data: Any, model: type[M], source: str, base_dir: Path | None = None) -> M:
    """Validate a parsed YAML document against ``model``; raise ConfigError listing all problems.

    Files the input reads are found relative to ``base_dir`` (the input file's folder);
    outputs go relative to the working directory, by default to ``runs/<input name>``.
    """
    if not isinstance(data, dict):
        raise ConfigError(source, [("(top level)", "expected a mapping of sections (key: value)")])
    context = {"base_dir": base_dir, "input_name": Path(source).stem}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(model, e) for e in exc.errors()]) from None


def read_input(path: str | Path) -> Any:
    """The parsed YAML document of an input file; ConfigError when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), [("(file)", "this is a folder; give the YAML input file")])
    if not path.is_file():
        raise ConfigError(str(path), [("(file)", "input file not found; check the path")])
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = ("not a text file" if isinstance(exc, UnicodeDecodeError)
               else exc.strerror or str(exc))
        raise ConfigError(str(path), [("(file)", f"cannot read it ({why}); give the YAML "
                                                 "input file")]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            str(path), [(where, f"malformed YAML: {problem}; check indentation and colons")]
        ) from None


def load_config(path: str | Path, model: type[M]) -> M:
    """Read and validate a YAML input file."""
    path = Path(path)
    data = read_input(path)
    return parse_config(data, model, str(path), base_dir=path.resolve().parent)

