"""The webhook relay: amoCRM's events (and amogate's own) to the operator's systems.

amoCRM POSTs its urlencoded webhooks to `/webhooks/amocrm/<account>/<secret>` (inbound.py);
each item becomes a JSON event, stored with a delivery per subscriber (storage/relay.py) before
amoCRM gets its 200. The relay worker (worker.py, sender.py) POSTs each event to its
subscribers, signed per Standard Webhooks (signing.py), retried per worker/retry.py.
`registration.py` registers the inbound URL with amoCRM and re-registers it when amoCRM
disables it.
"""
