"""The stages of .chalice/config.json, read as Chalice reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from chalicelib.core.settings import malware_scan_on

PROJECT = Path(__file__).resolve().parent.parent
CONFIG = PROJECT / ".chalice" / "config.json"


APP_NAME = json.loads(CONFIG.read_text())["app_name"]


def stage_names() -> list[str]:
    """Every stage in config.json, in its order."""
    return list(json.loads(CONFIG.read_text())["stages"])


def stage_config(stage: str) -> dict[str, Any]:
    """The stage's own object in config.json."""
    stage_object: dict[str, Any] = json.loads(CONFIG.read_text())["stages"][stage]
    return stage_object


def stage_environment(stage: str) -> dict[str, str]:
    """The stage's environment variables as Chalice applies them: top level, then the stage."""
    config = json.loads(CONFIG.read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


# What CloudWatch Logs accepts as a retention, in days.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)  # fmt: skip
# Lambda's Python runtimes supported beyond 2027 (python3.11 is deprecated 2027-06-30).
RUNTIMES = ("python3.12", "python3.13")


@dataclass(frozen=True)
class DeploySettings:
    """A stage's deployment knobs: its ``"deploy"`` object in config.json (Chalice ignores
    it; `make package` reads it). Missing keys take these defaults."""

    python: str = "python3.12"
    log_retention_days: int = 30
    throttle_rate_limit: int = 20  # requests per second, steady, for the whole stage
    throttle_burst_limit: int = 40
    xray: bool = False  # X-Ray tracing of API Gateway and the function
    # The deploy check refuses a stage open to anyone (AUTH_MODE=none) or to every site's
    # pages (CORS_ALLOW_ORIGIN='*') unless the stage says so here; the plan then warns.
    allow_open: bool = False
    allow_any_origin: bool = False
    # The bucket's lifecycle rule discards the parts of an upload not completed by then:
    # a part URL that does not sign its size can store up to 5 GiB until that day.
    abort_incomplete_multipart_days: int = 1
    # Lambda SnapStart for the API function: each deploy publishes a version, snapshotted
    # after its init, and API Gateway invokes it through the alias "live" (docs/deployment.md).
    snapstart: bool = False
    # GuardDuty Malware Protection for S3 on the upload prefix (the bucket stack's plan);
    # the stage's UPLOAD_MALWARE_SCAN must say the same, as the functions read that.
    malware_scan: bool = False

    @classmethod
    def for_stage(cls, stage: str) -> DeploySettings:
        """The stage's settings, validated; ValueError names the first bad one."""
        given = stage_config(stage).get("deploy", {})
        unknown = sorted(set(given) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{stage}: unknown deploy setting {unknown[0]!r}")
        settings = cls(**given)
        if settings.python not in RUNTIMES:
            raise ValueError(f"{stage}: deploy.python {settings.python!r}; allowed: {RUNTIMES}")
        if settings.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(
                f"{stage}: deploy.log_retention_days {settings.log_retention_days!r}; "
                f"allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        for name in ("xray", "allow_open", "allow_any_origin", "snapstart", "malware_scan"):
            if not isinstance(getattr(settings, name), bool):
                raise ValueError(
                    f"{stage}: deploy.{name} {getattr(settings, name)!r}; allowed: true, false"
                )
        for name in ("throttle_rate_limit", "throttle_burst_limit",
                     "abort_incomplete_multipart_days"):  # fmt: skip
            value = getattr(settings, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{stage}: deploy.{name} {value!r}; allowed: a whole number >= 1")
        if settings.malware_scan != malware_scan_on(stage_environment(stage)):
            raise ValueError(
                f"{stage}: deploy.malware_scan and UPLOAD_MALWARE_SCAN differ; allowed: both "
                "on (GuardDuty scans, and the verdict waits for it) or both off"
            )
        return settings
