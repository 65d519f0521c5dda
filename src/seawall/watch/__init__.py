"""``seawall watch``: a service that scans every new release of the packages you publish.

The pieces, each in its own module: ``config`` (watch.toml), ``db`` (schema and migrations),
``store`` (every read and write of state), ``net`` (polite HTTP: budgets, backoff, 429),
``sources`` (registry documents and feeds), ``pipeline`` (download, scan, diff), ``alerts``
(payloads, signatures, delivery), ``service`` (the loop), ``status`` and ``web`` (read-only views).
"""
