"""Shared constants and helpers of the runtime tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from aistack.resources import parse_resource

REPO = Path(__file__).resolve().parents[3]
MODEL_FILES = sorted((REPO / "models").glob("*/model.yaml"))

# Deterministic and short: greedy decoding, a fixed seed, few tokens.
FAST = {"temperature": 0, "seed": 7, "num_predict": 16}


def definitions():
    """Every OllamaModelDefinition in models/."""
    return [parse_resource(yaml.safe_load(path.read_text())) for path in MODEL_FILES]
