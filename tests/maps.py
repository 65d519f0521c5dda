"""Source maps built in code for tests."""

from __future__ import annotations

import json


def source_map(sources: dict[str, str | None], **extra: object) -> bytes:
    """A v3 map embedding ``sources`` (None = listed without content)."""
    doc = {
        "version": 3,
        "sources": list(sources),
        "sourcesContent": list(sources.values()),
        "mappings": "AAAA",
        "names": [],
        **extra,
    }
    return json.dumps(doc).encode()


FIRST_PARTY = source_map({
    "../src/main.ts": "export const main = () => 1;\nconsole.log(main());\n",
    "../src/secret/plan.ts": "// unreleased\nexport const FLAG = 'codename-x';\n",
    "../node_modules/lodash/eq.js": "module.exports = (a, b) => a === b;\n",
})
