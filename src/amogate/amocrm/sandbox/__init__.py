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
  contact custom fields (paginated, created by POST), leads, contacts (`query`), unsorted forms
  (create, list, get, accept, decline, summary), notes, `leads/complex`, webhooks. HAL bodies
  (`application/hal+json`), `_links.next` only when another page exists, 204 for empty lists and
  missing ids, `request_id` echo, per-item `validation-errors` with dotted paths, 400 for empty
  writes, 422 past 250 items, 404 `Cannot GET <url>`, 405.
- Limits: 7 requests per rolling second per token → 429 problem JSON with `retry_after`; an
  optional 403 HTML block after repeated violations (off by default).

Assumptions where amoCRM's behaviour is not documented (each module says which):
lazy rotation revokes the previous pair at the first use of the new one (API call or refresh);
a batch with any invalid item is rejected whole; unsorted `metadata` needs `form_id`, `form_name`,
`form_page`, `form_sent_at`; a repeated `source_uid` creates a new item (counted in stats);
accepted/declined unsorted items leave the list; complex > 50 → 400; duplicate control is off.

Sandbox extensions (not in amoCRM): the control API under `/_sandbox` (see
`routes/control.py`), the consent form target `/oauth/decide`, and `filter[source_uid]` on
`GET /api/v4/leads/unsorted` when `SandboxConfig.unsorted_source_uid_filter` is set.
"""
