"""The deployment files say what the README promises. (No Docker engine runs on the machines
these tests run on, so the image itself is not built here; nginx is tested for real in
tests/acceptance/test_nginx.py.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.ci import unavailable

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


UNIT = REPO / "deploy/systemd/amogate.service"


def _install_steps() -> list[str]:
    """The install commands in the unit's header (`#   sudo ...`)."""
    return [
        line.removeprefix("#").strip().removeprefix("sudo ")
        for line in UNIT.read_text().splitlines()
        if line.startswith("#   sudo ")
    ]


def _directories_the_unit_needs() -> set[str]:
    settings = re.findall(r"^(\w+)=(.*)$", UNIT.read_text(), flags=re.MULTILINE)
    needed: set[str] = set()
    for key, value in settings:
        if key in ("WorkingDirectory", "ReadWritePaths"):
            needed.update(value.split())
        elif key == "EnvironmentFile":
            needed.add(str(Path(value.lstrip("-")).parent))
        elif key == "ExecStart":
            needed.add(str(Path(value.split()[0]).parent.parent))  # the venv
    return needed


def test_the_install_steps_create_every_directory_the_unit_needs(tmp_path: Path) -> None:
    """Run the steps' directory-making commands inside a scratch root (owners dropped): every
    folder the unit names (working directory, writable paths, .env's folder, the venv) must
    exist afterwards, or systemd refuses to start the service (226/NAMESPACE)."""
    made: set[str] = set()
    for step in _install_steps():
        words = step.split()
        if words[:2] == ["install", "-d"]:
            made.update(w for w in words[2:] if w.startswith("/"))
        elif words[:3] == ["python3", "-m", "venv"]:
            made.add(words[3])
    for folder in made:
        (tmp_path / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    needed = _directories_the_unit_needs()
    assert needed >= {"/opt/amogate", "/opt/amogate/storage", "/opt/amogate/venv"}
    missing = [d for d in sorted(needed) if not (tmp_path / d.lstrip("/")).is_dir()]
    assert missing == []


def test_the_readme_gives_the_units_install_steps() -> None:
    readme = (REPO / "README.md").read_text()
    for step in _install_steps():
        assert f"sudo {step}" in readme, step


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze is not installed (Debian package: systemd)")
    # verify checks that ExecStart's program exists: point it at a stand-in of the venv's one.
    program = tmp_path / "opt/amogate/venv/bin/amogate"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / "amogate.service"
    unit.write_text(UNIT.read_text().replace("/opt/amogate/venv/bin/amogate", str(program)))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values too; it only warns on stderr.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
