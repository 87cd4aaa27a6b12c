"""Reads a policy tree from disk: `project.json` and `orgs/*.json`, into models.

A user's mistake never raises: it becomes a Diagnostic, and reading goes on with the
next file, so that every problem is reported at once.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from policysync.config import Limits
from policysync.diagnostics import Diagnostic, pointer, q, suggest
from policysync.jsonsource import SourceMap, parse, position, structural_problems
from policysync.layout import ORGS_DIR, PROJECT_FILE, is_org_file_name
from policysync.models import OrgPolicyFile, ProjectPolicy, ProjectPolicyFile

M = TypeVar("M", bound=BaseModel)


class Source:
    """A file's text, and the means to place a diagnostic in it by JSON pointer."""

    def __init__(self, display: str, text: str, max_depth: int) -> None:
        self.display = display
        self.text = text
        self._max_depth = max_depth
        self._map: SourceMap | None = None

    @property
    def source_map(self) -> SourceMap:
        if self._map is None:  # built only for files with something to report
            self._map = SourceMap(self.text, self._max_depth)
        return self._map

    def place(self, ptr: str, *, key: bool = False) -> tuple[int, int]:
        """The line and column of the value (or key) at `ptr`."""
        return position(self.text, self.source_map.offset_of(ptr, key=key))

    def diagnostic(self, code: str, ptr: str, message: str, *, key: bool = False) -> Diagnostic:
        line, col = self.place(ptr, key=key)
        return Diagnostic(self.display, line, col, code, ptr, message)

    def too_deep(self) -> Diagnostic | None:
        """Excess nesting that `json` could read (it then fails the schema somewhere)."""
        for problem in structural_problems(self.text, self.source_map, self._max_depth):
            line, col = position(self.text, problem.offset)
            return Diagnostic(self.display, line, col, problem.code, "", problem.message)
        return None


class OrgFile(NamedTuple):
    path: Path
    source: Source
    document: OrgPolicyFile


class ProjectFile(NamedTuple):
    path: Path
    source: Source
    policy: ProjectPolicy


def file_diagnostic(
    display: str, code: str, message: str, line: int = 1, col: int = 1
) -> Diagnostic:
    return Diagnostic(display, line, col, code, "", message)


def load_project(root: Path, limits: Limits) -> tuple[ProjectFile | None, list[Diagnostic]]:
    """`root/project.json` as a model, or None with the reasons."""
    path = root / PROJECT_FILE
    if not path.exists() and not path.is_symlink():
        message = (
            f"no project policy at {path}: run `policysync export` to fetch it, or save the "
            '`policy` of GET /v1/b2b/rbac/policy there as {"policy": ...}'
        )
        return None, [file_diagnostic(str(path), "project-missing", message)]
    data, source, diagnostics = read_json(path, root.resolve(), limits)
    if source is None:
        return None, diagnostics
    doc = to_model(ProjectPolicyFile, data, source, diagnostics)
    return (ProjectFile(path, source, doc.policy) if doc is not None else None), diagnostics


def load_org(
    path: Path, real_root: Path, limits: Limits
) -> tuple[OrgFile | None, list[Diagnostic]]:
    """One organization file as a model, or None with the reasons."""
    data, source, diagnostics = read_json(path, real_root, limits)
    if source is None:
        return None, diagnostics
    doc = to_model(OrgPolicyFile, data, source, diagnostics)
    return (OrgFile(path, source, doc) if doc is not None else None), diagnostics


def read_org_file(path: Path, real_root: Path, limits: Limits) -> OrgPolicyFile | None:
    """The document of an organization file known to be valid (validated moments ago):
    parsed straight into the model, faster than `load_org`, which it falls back on
    for anything unusual (a byte order mark, escapes pydantic reads differently). None
    when the file no longer loads."""
    try:
        raw = path.read_bytes()
        if not raw.startswith(b"\xef\xbb\xbf"):
            return OrgPolicyFile.model_validate_json(raw)
    except (OSError, ValidationError):
        pass
    org, _ = load_org(path, real_root, limits)
    return None if org is None else org.document


def org_paths(root: Path, diagnostics: list[Diagnostic]) -> list[Path]:
    """The organization files of `root`, in name order; what is skipped is reported."""
    orgs_dir = root / ORGS_DIR
    found: list[Diagnostic] = []
    paths = folder_files(root, ORGS_DIR, "organization", found)
    diagnostics += found
    if not paths and not any(d.file == str(orgs_dir) for d in found):  # not said already
        diagnostics.append(
            file_diagnostic(
                str(orgs_dir),
                "orgs-missing",
                f"no organization files in {orgs_dir}: add one file per managed organization "
                "(`policysync export` writes them)",
            )
        )
    return paths


def folder_files(root: Path, name: str, kind: str, diagnostics: list[Diagnostic]) -> list[Path]:
    """The `kind` files directly in the folder `root/name` (`orgs`, `templates`, `tests`),
    in name order: those ending in .json, hidden ones (.gitkeep, editor files) aside; none
    when there is no such folder. What is skipped is reported in `diagnostics`."""
    folder = root / name
    if folder.is_symlink() and not folder.resolve().is_relative_to(root.resolve()):
        message = f"{folder} leads outside the policies folder: make it a real folder"
        diagnostics.append(file_diagnostic(str(folder), "file-outside-root", message))
        return []
    if folder.exists() and not folder.is_dir():
        message = f"this is a file: {kind} files go into a folder named {name}"
        diagnostics.append(file_diagnostic(str(folder), "file-unreadable", message))
        return []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        entries = []
    paths = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        if entry.is_dir():
            message = f"a folder is not read: only files directly in {folder} are"
        elif not is_org_file_name(entry.name):
            message = f"not read: {kind} files must end in .json (rename it, or move it)"
        else:
            paths.append(path)
            continue
        diagnostics.append(file_diagnostic(str(path), "file-ignored", message))
    return paths


def read_json(
    path: Path, real_root: Path, limits: Limits
) -> tuple[Any, Source | None, list[Diagnostic]]:
    """The parsed JSON of one file; (None, …) with diagnostics when it cannot be used."""
    display = str(path)

    def fail(
        code: str, message: str, line: int = 1, col: int = 1
    ) -> tuple[Any, None, list[Diagnostic]]:
        return None, None, [file_diagnostic(display, code, message, line, col)]

    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):  # a symlink must stay inside the policies folder
            real = path.resolve(strict=True)
            if not real.is_relative_to(real_root):
                return fail(
                    "file-outside-root",
                    f"this file is a symlink to {real}, outside the policies folder "
                    f"{real_root}: copy the file into the policies folder instead",
                )
            st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return fail("file-unreadable", "not a regular file: replace it with a JSON file")
        if st.st_size > limits.max_file_bytes:
            return fail(
                "file-too-large",
                f"the file is {st.st_size} bytes, more than the limit of "
                f"{limits.max_file_bytes} (limits.max_file_bytes): split it, or raise the limit",
            )
        with open(path, "rb") as fh:
            raw = fh.read(limits.max_file_bytes + 1)
    except OSError as exc:
        if path.is_symlink():
            target = os.readlink(path)
            return fail("file-unreadable", f"a symlink to {target}, which does not exist")
        return fail("file-unreadable", f"cannot read the file: {exc.strerror or exc}")

    diagnostics: list[Diagnostic] = []
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in raw:
        return fail(
            "file-encoding",
            "the file is UTF-16 or UTF-32 (it has NUL bytes or their byte order mark): "
            "save it as UTF-8",
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        diagnostics.append(
            file_diagnostic(
                display,
                "file-bom",
                "the file starts with a UTF-8 byte order mark, which JSON does not allow "
                "(RFC 8259); it was ignored here, but save the file without it",
            )
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = raw[: exc.start].decode("utf-8", "replace")
        line, col = position(prefix, len(prefix))
        return fail(
            "file-encoding",
            f"byte 0x{raw[exc.start]:02x} at offset {exc.start} is not UTF-8: save the file as "
            "UTF-8",
            line,
            col,
        )
    if not text.strip():
        return fail("file-empty", "the file is empty: it must hold one JSON object")

    data, problems = parse(text, limits.max_nesting_depth)
    for problem in problems:
        line, col = position(text, problem.offset)
        diagnostics.append(
            Diagnostic(display, line, col, problem.code, problem.pointer, problem.message)
        )
    if problems:
        return None, None, diagnostics
    return data, Source(display, text, limits.max_nesting_depth), diagnostics


_EXPECTED = {
    "string_type": "a string",
    "tuple_type": "an array",
    "list_type": "an array",
    "model_type": "an object",
    "dict_type": "an object",
    "model_attributes_type": "an object",
}


def to_model(cls: type[M], data: Any, source: Source, diagnostics: list[Diagnostic]) -> M | None:
    """`data` as a `cls`, or None with the schema violations added to `diagnostics`."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        deep = source.too_deep()
        if deep is not None:  # the schema errors would only be noise
            diagnostics.append(deep)
            return None
        for err in exc.errors():
            ptr = pointer(*err["loc"])
            kind = err["type"]
            if kind == "missing":
                name = str(err["loc"][-1])
                diagnostics.append(
                    source.diagnostic(
                        "schema-missing-field", ptr, f"required field {q(name)} is missing: add it"
                    )
                )
            elif kind == "extra_forbidden":
                diagnostics.append(
                    source.diagnostic(
                        "schema-unknown-field",
                        ptr,
                        _unknown_field(cls, err["loc"], data),
                        key=True,
                    )
                )
            else:
                expected = _EXPECTED.get(kind)
                found = _describe(err["input"])
                message = (
                    f"expected {expected}, found {found}"
                    if expected
                    else f"{err['msg']} (found {found})"
                )
                if not err["loc"]:
                    message += ": a policy file must hold one JSON object"
                diagnostics.append(source.diagnostic("schema-type", ptr, message))
        return None


def _unknown_field(cls: type[BaseModel], loc: tuple[int | str, ...], data: Any) -> str:
    """Names the unknown field and the fields allowed in its place."""
    model: type[BaseModel] = cls
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            info = next((f for f in model.model_fields.values() if f.alias == part), None)
        inner = _model_in(info.annotation) if info is not None else None
        if inner is None:
            break
        model = inner
    allowed = [f.alias or name for name, f in model.model_fields.items()]
    name = str(loc[-1])
    return (
        f"unknown field {q(name)}{suggest(name, allowed)}: remove it or fix its spelling "
        f"(allowed here: {', '.join(allowed)})"
    )


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside `Model` or `tuple[Model, ...]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "a number too large to represent"
    if isinstance(value, int) and abs(value) > 10**30:
        return "a very large number"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {q(value[:40])}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
