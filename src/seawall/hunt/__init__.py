"""Code fingerprinting: index private source once, then find it in any artifact.

``seawall index add`` turns private files into hashes with line numbers (never text);
``seawall hunt`` streams a target through the same openers as ``seawall scan`` and runs
the ``codecopy`` detector, which looks each suspect file's fingerprints up in the index.
The heavy pieces (numpy, tree-sitter grammars) live in the ``hunt`` extra; importing this
package alone needs neither.
"""

from __future__ import annotations

INSTALL_HINT = "code fingerprinting needs the 'hunt' extra: pip install 'seawall[hunt]'"


class HuntUnavailable(RuntimeError):
    """An optional dependency of the hunt extra is missing."""


def require() -> None:
    """Fail with a clear message (not an ImportError trace) when the extra is missing."""
    try:
        import numpy  # noqa: F401
        import tree_sitter  # noqa: F401
    except ImportError as exc:
        raise HuntUnavailable(f"{INSTALL_HINT} ({exc.name} is missing)") from None
