"""A local stand-in for a captcha provider's siteverify endpoint, run as its own process:

    python -m tests.support.captcha_verifier PORT GOOD_TOKEN SECRET

It answers like Turnstile/hCaptcha/reCAPTCHA: `{"success": true}` only for the form-encoded
`response` GOOD_TOKEN sent with `secret` SECRET, `{"success": false, ...}` otherwise.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


def main() -> None:
    port, good_token, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            form = parse_qs(self.rfile.read(length).decode("utf-8"))
            passed = form.get("response") == [good_token] and form.get("secret") == [secret]
            answer: dict[str, object] = {"success": passed}
            if not passed:
                answer["error-codes"] = ["invalid-input-response"]
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
