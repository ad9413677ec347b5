"""PaddleSeg's ``deploy.yaml`` / ``inference.yml``: the ``Deploy`` section, checked before anything uses it."""
from __future__ import annotations

from typing import Any

import yaml

from ..errors import FormatError

_STRINGS = ("model", "params", "output_op", "output_dtype")


def parse_deploy(data: bytes, source: str = "<bytes>") -> dict[str, Any]:
    """The ``Deploy`` mapping of a deploy config (``{}`` when there is none); see :func:`parse_config`."""
    return parse_config(data, source).get("Deploy") or {}


def parse_config(data: bytes, source: str = "<bytes>") -> dict[str, Any]:
    """A whole deploy config (``Deploy`` and PaddleX's ``Global``; ``{}`` when empty); ``source`` names the file.

    Checked: the document and ``Deploy`` are mappings, ``model``/``params``/``output_op``/``output_dtype`` are
    strings, ``transforms`` is a list of mappings and ``input_shape`` a list of integers.
    """
    try:
        doc = yaml.safe_load(data)
    except (yaml.YAMLError, ValueError, RecursionError) as e:  # ValueError: bad encodings and numbers
        raise FormatError(f"{source}: invalid YAML ({e}); fix or re-export the deploy config") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise FormatError(f"{source}: expected a mapping with a 'Deploy' section, found a {type(doc).__name__}")
    deploy = doc.get("Deploy") or {}
    if not isinstance(deploy, dict):
        raise FormatError(f"{source}: 'Deploy' must be a mapping, found a {type(deploy).__name__}")
    for key in _STRINGS:
        if deploy.get(key) is not None and not isinstance(deploy[key], str):
            raise FormatError(f"{source}: Deploy.{key} must be a string, found {deploy[key]!r}")
    transforms = deploy.get("transforms")
    if transforms is not None and (not isinstance(transforms, list)
                                   or not all(isinstance(t, dict) for t in transforms)):
        raise FormatError(f"{source}: Deploy.transforms must be a list of mappings, found {transforms!r}")
    shape = deploy.get("input_shape")
    if shape is not None and (not isinstance(shape, list) or not all(type(d) is int for d in shape)):
        raise FormatError(f"{source}: Deploy.input_shape must be a list of integers, found {shape!r}")
    if doc.get("Global") is not None and not isinstance(doc["Global"], dict):
        raise FormatError(f"{source}: 'Global' must be a mapping, found a {type(doc['Global']).__name__}")
    return doc
