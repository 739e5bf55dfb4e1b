"""`deploy/prometheus/alerts.yml` is valid, behaves as its cases say, and names only metrics
the code exports (a renamed metric would otherwise silence its alert without a trace)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from globeguard.observability import metrics as contract
from globeguard.observability.metrics import Metrics

ROOT = Path(__file__).parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
CASES = Path(__file__).parent / "prometheus" / "alerts_test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is missing (Debian package `prometheus`; scripts/ensure-tools.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules(promtool):
    result = _run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_fire_as_their_cases_say(promtool):
    result = _run(promtool, "test", "rules", str(CASES))
    assert result.returncode == 0, result.stdout + result.stderr


def _exported() -> set[str]:
    text = generate_latest(Metrics().registry).decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))


def _used_by_rules() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [str(rule["expr"]) for group in groups for rule in group["rules"]]
    return {name for expr in exprs for name in re.findall(r"\bglobeguard_[a-z_]+\b", expr)}


def test_every_metric_in_the_rules_is_exported():
    used = _used_by_rules()
    assert used, "the rules name no metric"
    assert used - _exported() == set()


def test_the_contract_names_are_the_exported_names():
    names = {
        contract.INGEST_REQUESTS_TOTAL,
        contract.DELIVERY_ATTEMPTS_TOTAL,
        contract.DELIVERY_LAG_SECONDS,
        contract.DELIVERY_DEAD,
        contract.OUTBOX_OLDEST_UNDISPATCHED_SECONDS,
        contract.REFRESH_FAILURES_TOTAL,
    }
    assert names <= _exported()
    # Every contract metric has an alert watching it.
    assert names <= _used_by_rules()
