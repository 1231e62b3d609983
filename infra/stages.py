"""The stages of .chalice/config.json, read as Chalice reads them."""

from __future__ import annotations

import json
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
CONFIG = PROJECT / ".chalice" / "config.json"


APP_NAME = json.loads(CONFIG.read_text())["app_name"]


def stage_names() -> list[str]:
    """Every stage in config.json, in its order."""
    return list(json.loads(CONFIG.read_text())["stages"])


def stage_environment(stage: str) -> dict[str, str]:
    """The stage's environment variables as Chalice applies them: top level, then the stage."""
    config = json.loads(CONFIG.read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env
