"""Deployment files must agree with the code: every GLOBEGUARD_ variable they set is a real
setting, probes hit real endpoints, ports match. (One seed's manifests set DATABASE_URL while
its code read DATABASE_ONE_URL; this catches that class of mistake.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from globeguard.settings import Settings

DEPLOY = Path(__file__).parents[2] / "deploy"


def _env_names(text: str) -> set[str]:
    return set(re.findall(r"\b(GLOBEGUARD_[A-Z_]+)\b", text))


def _is_setting(name: str) -> bool:
    path = name.removeprefix("GLOBEGUARD_").lower().split("__")
    model: type = Settings
    for part in path:
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return False
        model = fields[part].annotation  # nested group or leaf type
    return True


@pytest.mark.parametrize(
    "path", sorted(p for p in DEPLOY.rglob("*") if p.is_file()), ids=lambda p: p.name
)
def test_every_variable_is_a_setting(path):
    unknown = sorted(n for n in _env_names(path.read_text()) if not _is_setting(n))
    assert unknown == []


def test_kubernetes_probes_and_ports_match_the_service():
    docs = [
        doc
        for f in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(f.read_text())
    ]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 8000
    assert "8000" in (DEPLOY / "Dockerfile").read_text()
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


async def test_the_ops_endpoints_the_probes_use_answer(client):
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
