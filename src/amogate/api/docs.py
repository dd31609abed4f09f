"""`/docs`: Swagger UI served from the package, so it works without internet.

FastAPI's own page loads Swagger UI from a CDN and is blank offline (a gateway on a closed
network, or behind a strict firewall). The assets come from the `fastapi-offline` package,
which ships a current Swagger UI build (5.x, needed for FastAPI's OpenAPI 3.1) and keeps it
up to date; amogate uses only its files, not its app factory.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/static"


def install_docs(app: FastAPI) -> None:
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_PATH, StaticFiles(directory=str(assets)), name="docs-static")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            # No badge from validator.swagger.io: the page makes no request to another host.
            swagger_ui_parameters={"validatorUrl": None},
        )
