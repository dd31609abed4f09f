"""The deployment files say what the README promises. (No Docker engine runs on the machines
these tests run on, so the image itself is not built here; nginx is tested for real in
tests/acceptance/test_nginx.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_runs_as_a_non_root_user_with_a_health_check_and_no_secret() -> None:
    instructions = _instructions()
    users = [arg for name, arg in instructions if name == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    health = " ".join(arg for name, arg in instructions if name == "HEALTHCHECK")
    assert "/health" in health
    assert any(name == "EXPOSE" and "9095" in arg for name, arg in instructions)
    env = " ".join(arg for name, arg in instructions if name in ("ENV", "ARG"))
    for secret in ("API_KEY", "AMO_CLIENT_SECRET", "ADMIN_PASSWORD", "AMO_LONG_LIVED_TOKEN"):
        assert secret not in env
    assert instructions[0][0] == "FROM"
    assert "slim" in instructions[0][1]


def test_compose_runs_the_gateway_on_9095_with_postgres_and_nginx_profiles() -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    gateway = services["amogate"]
    # Published on the host's loopback only: the internet comes through nginx.
    assert gateway["ports"] == ["127.0.0.1:9095:9095"]
    assert any(str(v).endswith(":/app/storage") for v in gateway["volumes"])
    assert "profiles" not in gateway
    assert services["postgres"]["profiles"] == ["postgres"]
    assert services["nginx"]["profiles"] == ["nginx"]
    assert "deploy/nginx/amogate.conf" in " ".join(services["nginx"]["volumes"])
    assert {"80:80", "443:443"} <= set(services["nginx"]["ports"])


def test_compose_believes_forwarded_headers_from_its_nginx_only() -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    nginx_address = services["nginx"]["networks"]["amogate"]["ipv4_address"]
    assert services["amogate"]["environment"]["FORWARDED_ALLOW_IPS"] == nginx_address


def test_compose_holds_no_database_password() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    compose: dict[str, Any] = yaml.safe_load(text)
    password = compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert password == "${POSTGRES_PASSWORD}"  # from .env
    assert not re.search(r"postgresql://\w+:\w+@", text.replace("<the same password>", ""))


def test_the_systemd_unit_restarts_always_and_is_hardened() -> None:
    unit = (REPO / "deploy/systemd/amogate.service").read_text()
    settings = dict(
        re.findall(r"^(\w+)=(.*)$", unit, flags=re.MULTILINE),
    )
    assert settings["Restart"] == "always"
    assert settings["ExecStart"].endswith("amogate serve --host 127.0.0.1")
    assert settings["User"] != "root"
    for option in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert settings[option] == "yes"
    assert settings["ProtectSystem"] == "strict"
