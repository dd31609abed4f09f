"""How long amogate takes to read one form post before storing it, in-process (no HTTP, no
database): body parsing, field recognition and the lead intake's reading rules.

    python -m bench.forms_parse [--posts 20000]

Prints microseconds per post (median of 5 rounds) for a Tilda-shaped urlencoded post, a
multipart post and a JSON post.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from urllib.parse import urlencode

import httpx

from amogate.forms.bodies import parse_body
from amogate.forms.recognize import recognize
from amogate.forms.submission import FormSettings, Visit, read_submission

FIELDS = {
    "Name": "Dilnoza Karimova",
    "Phone": "+998 (90) 123-45-67",
    "Email": "dilnoza@example.uz",
    "Shahar": "Toshkent",
    "Textarea": "Konditsioner narxi qancha?",
    "tranid": "4410000:1234567",
    "formid": "form123456789",
    "COOKIES": "TILDAUTM=utm_source%3Dgoogle%7C%7C%7Cutm_medium%3Dcpc; tildasid=1",
}
FORM = FormSettings("Tilda landing", tags=["tilda"])
VISIT = Visit(ip="203.0.113.7", page="https://site.uz/")


def bodies() -> dict[str, tuple[str, bytes]]:
    multipart = httpx.Request("POST", "http://x", files={k: (None, v) for k, v in FIELDS.items()})
    return {
        "urlencoded": ("application/x-www-form-urlencoded", urlencode(FIELDS).encode()),
        "multipart": (multipart.headers["content-type"], multipart.read()),
        "json": ("application/json", json.dumps(FIELDS).encode()),
    }


def per_post_us(content_type: str, raw: bytes, posts: int) -> float:
    started = time.perf_counter()
    for _ in range(posts):
        body = parse_body(content_type, raw)
        read_submission(recognize(body.pairs, {}), FORM, VISIT, files=body.files)
    return (time.perf_counter() - started) / posts * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=20_000)
    args = parser.parse_args()
    print(f"{'form body':<12} {'µs per post (median of 5)':>26}")
    for name, (content_type, raw) in bodies().items():
        rounds = [per_post_us(content_type, raw, args.posts // 5) for _ in range(5)]
        print(f"{name:<12} {statistics.median(rounds):>26.1f}")


if __name__ == "__main__":
    main()
