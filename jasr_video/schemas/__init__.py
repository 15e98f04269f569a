"""JSON Schemas (draft 2020-12) of the JSON outputs, shipped with the package (docs/outputs.md).

* ``jsonl``: one line of the JSON Lines (``--json``): a frame record with its faces, or an event record
  (``stream_gap``, ``stream_error``, and types of newer versions, which need only a string ``event``).
* ``tracks``: one line of ``tracks.jsonl`` (``--tracks DIR``).

Records may carry fields the schemas do not list (``additionalProperties`` is true); the fields they list are
required, with their types. Validate with the ``jsonschema`` package::

    import json

    import jsonschema
    from jasr_video.schemas import load_schema

    validator = jsonschema.Draft202012Validator(load_schema("jsonl"))
    for line in open("clip.jsonl"):
        validator.validate(json.loads(line))

This package imports nothing else of jasr_video.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMAS = ("jsonl", "tracks")


def schema_text(name: str) -> str:
    """The schema `name` (one of :data:`SCHEMAS`) as the JSON text shipped in the package."""
    if name not in SCHEMAS:
        raise ValueError(f"no schema {name!r}: one of {', '.join(SCHEMAS)}")
    return resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The schema `name` (``"jsonl"`` or ``"tracks"``) as a dict, ready for ``jsonschema``."""
    return json.loads(schema_text(name))
