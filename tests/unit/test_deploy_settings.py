"""A stage's deployment knobs (its "deploy" object in .chalice/config.json), validated."""

from __future__ import annotations

import json
import re

import pytest

from infra import stages
from infra.stages import DeploySettings


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    monkeypatch.setattr(stages, "CONFIG", path)

    def write(deploy, env=None):
        stage = {"deploy": deploy, "environment_variables": env or {}}
        path.write_text(json.dumps({"app_name": "a", "stages": {"prod": stage}}))

    return write


def test_prod_runs_python_3_12_keeps_logs_90_days_is_throttled_and_scans_for_malware():
    assert DeploySettings.for_stage("prod") == DeploySettings(
        python="python3.12", log_retention_days=90, throttle_rate_limit=50,
        throttle_burst_limit=100, malware_scan=True,
    )  # fmt: skip


def test_a_stage_without_deploy_settings_gets_the_defaults(config):
    config({})
    assert DeploySettings.for_stage("prod") == DeploySettings()
    assert (DeploySettings().allow_open, DeploySettings().allow_any_origin) == (False, False)


def test_dev_allows_any_origin_by_name_and_nothing_else():
    dev = DeploySettings.for_stage("dev")
    assert (dev.allow_open, dev.allow_any_origin) == (False, True)


@pytest.mark.parametrize(
    ("deploy", "message"),
    [({"python": "python3.11"}, "prod: deploy.python 'python3.11'; allowed: "
                                "('python3.12', 'python3.13')"),
     ({"log_retention_days": 10}, "prod: deploy.log_retention_days 10; allowed: 1, 3, 5, 7, "
                                  "14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, "
                                  "1827, 2192, 2557, 2922, 3288, 3653"),
     ({"throttle_rate_limit": 0}, "prod: deploy.throttle_rate_limit 0; allowed: a whole "
                                  "number >= 1"),
     ({"throttle_burst_limit": True}, "prod: deploy.throttle_burst_limit True; allowed: a "
                                      "whole number >= 1"),
     ({"xray": "yes"}, "prod: deploy.xray 'yes'; allowed: true, false"),
     ({"allow_open": 1}, "prod: deploy.allow_open 1; allowed: true, false"),
     ({"snapstart": "on"}, "prod: deploy.snapstart 'on'; allowed: true, false"),
     ({"abort_incomplete_multipart_days": 0}, "prod: deploy.abort_incomplete_multipart_days 0; "
                                              "allowed: a whole number >= 1"),
     ({"allow_any_origin": "true"}, "prod: deploy.allow_any_origin 'true'; allowed: true, false"),
     ({"malware_scan": "true"}, "prod: deploy.malware_scan 'true'; allowed: true, false"),
     ({"runtime": "python3.12"}, "prod: unknown deploy setting 'runtime'")],
)  # fmt: skip
def test_bad_deploy_settings_are_refused_by_name(config, deploy, message):
    config(deploy)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DeploySettings.for_stage("prod")


@pytest.mark.parametrize(("deploy", "env"), [({"malware_scan": True}, {}),
                                             ({}, {"UPLOAD_MALWARE_SCAN": "true"})])  # fmt: skip
def test_the_malware_scan_is_on_in_both_places_or_in_neither(config, deploy, env):
    # The plan (deploy.malware_scan) scans; the functions (UPLOAD_MALWARE_SCAN) wait for it.
    config(deploy, env)
    message = ("prod: deploy.malware_scan and UPLOAD_MALWARE_SCAN differ; allowed: both on "
               "(GuardDuty scans, and the verdict waits for it) or both off")  # fmt: skip
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DeploySettings.for_stage("prod")
    config({"malware_scan": True}, {"UPLOAD_MALWARE_SCAN": "true", "UPLOAD_VERIFY": "true"})
    assert DeploySettings.for_stage("prod").malware_scan is True
