"""JSON Schema of a task's sample options, from the same signature seqcli checks them
against: the server's OpenAPI document and its page are built from it."""

from __future__ import annotations

from seqcli.api import INPUTS
from seqcli.schema import options_schema


def request_schema(params: dict, recipe_values: dict, pictures: list[str], stream: bool) -> dict:
    """The body of POST /v1/predict (or /v1/generate): the task's options, `pictures`, and
    for generate `stream`."""
    properties = options_schema(params, recipe_values, skip=pictures)
    for entry in properties.values():
        entry.pop("required", None)
    if pictures:
        properties["pictures"] = {"type": "array", "items": {"enum": pictures},
                                  "description": "pictures whose numbers the answer carries"}
    if stream:
        properties["stream"] = {"type": "boolean", "default": False,
                                "description": "send each token as a server-sent event as it is drawn"}
    required = [INPUTS] if INPUTS in params else []
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
