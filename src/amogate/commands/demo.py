"""`amogate demo`: the gateway and the built-in amoCRM sandbox, connected and ready for curl.

The sandbox runs as its own process; the gateway runs here with SQLite in a temporary folder.
They are connected through the real OAuth code exchange, exactly as a browser would do it
(the consent is given through the sandbox's control API instead of a click).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import tempfile
from pathlib import Path

import httpx
import typer

from amogate.amocrm.sandbox.runner import SandboxServer


def _port(preferred: int) -> int:
    """`preferred` when free, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port


def curl_line(url: str, api_key: str) -> str:
    body = (
        '{"source":"website","form_name":"Konsultatsiya","form_page":"https://example.uz/contact",'
        '"lead":{"name":"Yangi mijoz so\'rovi","price":100000,"tags":["website","demo"]},'
        '"contact":{"name":"Jasur Karimov","phone":"90 987-65-43","email":"jasur@example.uz"},'
        '"utm":{"utm_source":"google","utm_medium":"cpc","utm_campaign":"demo"},'
        '"comment":"Mijoz tez orada javob kutmoqda"}'
    )
    body = body.replace("'", "'\\''")
    return (
        f"curl -s -X POST {url}/api/v1/leads/unsorted "
        f"-H 'Content-Type: application/json' -H 'X-API-KEY: {api_key}' -d '{body}'"
    )


def run_demo(port: int = 9095, sandbox_port: int = 9096) -> None:
    import uvicorn

    from amogate.accounts.config import DEFAULT
    from amogate.app import create_app
    from amogate.connection import connect
    from amogate.logging import configure_logging
    from amogate.runtime import connection_for
    from amogate.settings import Settings
    from amogate.storage import migrate
    from amogate.storage.db import Database

    gateway_port = _port(port)
    redirect_uri = f"http://localhost:{gateway_port}/oauth/callback"
    api_key = "demo-" + secrets.token_urlsafe(18)
    admin_password = "demo-" + secrets.token_urlsafe(9)
    # A sandbox-only credential so the user can look inside "amoCRM" with curl.
    viewer_token = "sandbox-viewer-" + secrets.token_urlsafe(12)
    with (
        tempfile.TemporaryDirectory(prefix="amogate-demo-") as tmp,
        SandboxServer(
            port=_port(sandbox_port), redirect_uri=redirect_uri, long_lived_token=viewer_token
        ) as sandbox,
    ):
        folder = Path(tmp)
        settings = Settings(
            _env_file=None,
            api_key=api_key,
            amo_base_url=sandbox.url,
            amo_client_id="sandbox-client-id",
            amo_client_secret="sandbox-client-secret",  # noqa: S106 - the sandbox's own
            amo_redirect_uri=redirect_uri,
            database_url=f"sqlite:///{folder / 'amogate.db'}",
            token_storage_path=folder / "tokens.json",
            error_log_path=folder / "error.log",
            log_format="console",
            log_level="WARNING",
            host="127.0.0.1",
            port=gateway_port,
            admin_password=admin_password,
        )
        configure_logging(log_format="console", level="WARNING")

        async def connect_account() -> str:
            database = Database(settings.database_url)
            await migrate.upgrade(database)
            amo = await connection_for(settings, database, DEFAULT)
            try:
                async with httpx.AsyncClient(base_url=sandbox.url) as control:
                    consent = await connect.new_consent_url(amo)
                    state = httpx.URL(consent).params["state"]
                    answer = await control.post(
                        "/_sandbox/authorize",
                        json={"client_id": settings.amo_client_id, "state": state},
                    )
                    answer.raise_for_status()
                    code = answer.json()["code"]
                await connect.consume_state(amo, state)
                host = await connect.account_host(amo, httpx.URL(sandbox.url).netloc.decode())
                connected = await connect.exchange(amo, code, host)
                return connected.account_name or connected.base_domain
            finally:
                await amo.stop()
                await database.dispose()

        account = asyncio.run(connect_account())
        url = f"http://127.0.0.1:{gateway_port}"
        banner = "\n".join(
            [
                "",
                "amogate demo is running.",
                f"  gateway:        {url}   (docs: {url}/docs)",
                f"  amoCRM sandbox: {sandbox.url}   (account: {account})",
                f"  demo API key:   {api_key}",
                f"  admin page:     {url}/admin   (password: {admin_password})",
                "",
                "Create a lead:",
                f"  {curl_line(url, api_key)}",
                "",
                "See it arrive in the sandbox's amoCRM (unsorted leads, API v4):",
                f"  curl -s -H 'Authorization: Bearer {viewer_token}' "
                f"{sandbox.url}/api/v4/leads/unsorted",
                "",
                "Press Ctrl-C to stop both.",
                "",
            ]
        )
        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=gateway_port, log_config=None)
        )

        async def serve_then_announce() -> None:
            # The banner (with its curl line) appears only once the gateway is listening.
            serving = asyncio.create_task(server.serve())
            while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers a flag only
                await asyncio.sleep(0.05)
            if server.started:
                typer.echo(banner)
            await serving

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_then_announce())
        typer.echo("amogate demo stopped.")
