"""The floor: a bare ASGI app answering `/health`'s exact bytes on the server `amogate serve`
runs (uvicorn, with the same options), so every figure can be given as a share of what the
machine allows in the same run.

    python -m bench.floor --port PORT
"""

from __future__ import annotations

import argparse

from starlette.types import Receive, Scope, Send

from amogate.api.health import HEALTH_BODY
from amogate.commands.serving import server_options

_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(HEALTH_BODY)).encode()),
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": HEALTH_BODY})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, **server_options("127.0.0.1", args.port, forwarded_allow_ips="127.0.0.1"))


if __name__ == "__main__":
    main()
