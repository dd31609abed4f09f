"""amoCRM sandbox: a local emulator of amoCRM API v4 and OAuth2 for tests, benchmarks and demos.

Entry points: `app.create_sandbox_app(config, state)` (ASGI), `transport.SandboxTransport(app)`
(in-process httpx transport), `server.run(config, host, port)` (uvicorn), `runner.SandboxServer`
(a separate process for tests), `python -m amogate.amocrm.sandbox` (the CLI flags of
`amogate sandbox`). This package imports nothing from the rest of amogate.

Emulated as amoCRM does it (facts from `amocrm-api.md`, section numbers in each module):
- OAuth2: consent redirect with `code`, `state`, `referer`, `client_id` (or `error=access_denied`);
  `POST /oauth2/access_token` with JSON or form bodies; codes valid 20 min and once; JWT-shaped
  access tokens with amoCRM's claims; refresh rotation; problem-JSON errors with Russian titles
  and `hint`s (`Token has been revoked`, ...); long-lived tokens; 401 `Invalid user name or
  password` on the API.
- API v4: account (`with=`), users, pipelines and statuses (Unsorted type 1, 142, 143), lead and
  contact custom fields (paginated, created by POST), leads and contacts (create, get, list,
  `query` search as amoCRM does it — search.py —, `PATCH` one or a batch — updates.py),
  unsorted forms (create, list, get, accept, decline, summary; contacts hidden until accepted;
  existing contacts linked by `{"id": N}`), notes, `leads/complex` (straight into a stage, or
  through Unsorted with form metadata; `merged`), webhook subscriptions. HAL bodies
  (`application/hal+json`), `_links.next` only when another page exists, 204 for empty lists and
  missing ids, `request_id` echo, per-item `validation-errors` with dotted paths, 400 for empty
  writes, 422 past 250 items, 404 `Cannot GET <url>`, 405.
- Webhooks it SENDS to subscribed destinations in amoCRM's urlencoded format
  (`amogate.amocrm.webhook_format`): lead added/updated/moved/reassigned/noted, contact
  added/updated/noted (webhook_items.py), in the background after the answer, with amoCRM's
  2 s timeout, retry schedule and disable rule (webhook_policy.py, webhook_sender.py).
- Limits: 7 requests per rolling second per token → 429 problem JSON with `retry_after`; an
  optional 403 HTML block after repeated violations (off by default).

Assumptions where amoCRM's behaviour is not documented (each module says which):
lazy rotation revokes the previous pair at the first use of the new one (API call or refresh);
a batch with any invalid item is rejected whole; unsorted `metadata` needs `form_id`, `form_name`,
`form_page`, `form_sent_at`; a repeated `source_uid` creates a new item (counted in stats);
accepted/declined unsorted items leave the list; complex > 50 → 400; complex metadata needs a
`category` (`forms`, `sip`) and routes the lead through Unsorted; duplicate control is off unless
switched on; phone search ignores formatting but never rewrites digits; an unknown id to link
or patch is `NotSupportedChoice` on its path; webhook retries at +5, +15 min (+30, +60 min for
499/5xx).

Sandbox extensions (not in amoCRM): the control API under `/_sandbox` (see
`routes/control.py`; it includes `/_sandbox/settings` for duplicate control and the webhook
policy, and `/_sandbox/webhooks/deliveries`, every webhook attempt with its answer and
latency), the consent form target `/oauth/decide`, `filter[source_uid]` on
`GET /api/v4/leads/unsorted` when `SandboxConfig.unsorted_source_uid_filter` is set, and the
`--duplicate-control` / `--webhook-*` flags of `python -m amogate.amocrm.sandbox`.
"""
