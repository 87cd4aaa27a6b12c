"""House rules: a team's own JSON Schemas (draft 2020-12), listed in the settings as
globs (`house_rules = ["schemas/house/*.json"]`), that every organization file must also
satisfy.

Each schema is checked as a schema and compiled once per run (once per worker process
of a large `validate`); a violation is a diagnostic at the place in the file that fails.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable

from policysync.config import Limits, Settings
from policysync.diagnostics import Diagnostic, pointer, q
from policysync.loader import Source, file_diagnostic, read_json

DRAFT = "https://json-schema.org/draft/2020-12/schema"


class HouseRule:
    """One compiled house rule. Pickled as its schema (for the worker processes of a
    large `validate`), compiled again once on the other side."""

    def __init__(self, display: str, schema: dict[str, Any]) -> None:
        self.display = display
        self.schema = schema
        title = schema.get("title")
        self.title = title if isinstance(title, str) and title.strip() else display
        self.validator = Draft202012Validator(schema)

    def __reduce__(self) -> tuple[type[HouseRule], tuple[str, dict[str, Any]]]:
        return HouseRule, (self.display, self.schema)

    def check(self, data: Any, source: Source) -> list[Diagnostic]:
        """The violations of this rule by the document `data` read from `source`."""
        try:
            errors = sorted(self.validator.iter_errors(data), key=_order)
        except Unresolvable as exc:  # a `$ref` naming a schema nobody gave
            # at the rule, not the file: the same finding of many files is reported once
            message = f"{exc}: make every `$ref` local to the schema"
            return [file_diagnostic(self.display, "house-rule-invalid", message)]
        return [
            source.diagnostic("house-rule", pointer(*e.absolute_path), f"{self.title}: {e.message}")
            for e in errors
        ]


def _order(error: ValidationError) -> tuple[str, str]:
    return pointer(*error.absolute_path), error.message


def house_rule_files(settings: Settings) -> tuple[list[Path], list[Diagnostic]]:
    """The schema files `settings.house_rules` names, in order, each once; a glob that
    matches nothing is reported at the settings file."""
    files: list[Path] = []
    diagnostics: list[Diagnostic] = []
    origin, line = settings.house_rules_origin
    for pattern in settings.house_rules:
        matches = sorted(glob.glob(pattern, recursive=True))
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            message = (
                f"house_rules: {q(pattern)} matches no file: fix the glob (relative to the "
                "settings file) or add the schema"
            )
            diagnostics.append(file_diagnostic(origin, "house-rule-invalid", message, line))
        for match in matches:
            if Path(match) not in files:
                files.append(Path(match))
    return files, diagnostics


def load_house_rules(settings: Settings) -> tuple[list[HouseRule], list[Diagnostic]]:
    """The compiled house rules of `settings`, and what is wrong with the ones that are not
    (a missing file, bad JSON, a schema that is not a valid draft 2020-12 schema)."""
    files, diagnostics = house_rule_files(settings)
    rules = []
    for path in files:
        rule, problems = load_house_rule(path, settings.limits)
        diagnostics += problems
        if rule is not None:
            rules.append(rule)
    return rules, diagnostics


def load_house_rule(path: Path, limits: Limits) -> tuple[HouseRule | None, list[Diagnostic]]:
    data, source, diagnostics = read_json(path, path.resolve().parent, limits)
    if source is None:
        return None, diagnostics
    if not isinstance(data, dict):
        message = "a house rule must be a JSON Schema object (draft 2020-12)"
        return None, [source.diagnostic("house-rule-invalid", "", message)]
    declared = validator_for(data, default=Draft202012Validator)
    if declared is not Draft202012Validator:
        message = (
            f"`$schema` names another draft: house rules are draft 2020-12 ({q(DRAFT)}) "
            "or name none"
        )
        return None, [source.diagnostic("house-rule-invalid", "/$schema", message)]
    try:
        Draft202012Validator.check_schema(data)
    except SchemaError as exc:
        where = pointer(*exc.absolute_path)
        message = f"not a valid JSON Schema (draft 2020-12): {exc.message}"
        return None, [source.diagnostic("house-rule-invalid", where, message)]
    return HouseRule(str(path), data), diagnostics
