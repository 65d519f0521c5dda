"""The files ``npm publish`` would send for a project directory, computed without npm.

No lifecycle script is run (``prepare``, ``prepack``...): this only reads the tree. The
rules follow npm 11's ``npm-packlist`` (10.x) on top of ``ignore-walk`` (npm's
``lib/index.js`` of both was read, not copied):

* Every directory is walked with rule sets applied in order: npm's defaults, the
  ``files`` field (root only: ``*`` then each entry re-included), ``.npmignore``, else
  ``.gitignore`` (a ``files`` field silences both in the root, not below it), then the
  strict rules (``package.json``, ``README*``, ``LICENSE*``/``LICENCE*``, ``COPYING*``, the
  ``main``, ``browser`` and ``bin`` files; never ``/.git``, ``/node_modules``, ``.npmrc``,
  lockfiles). Within a set the last matching rule wins, and a directory's verdict is
  decided first by its ancestors' rules, with the path relative to each.
* A directory is entered when it may still hold an included file (a negation can
  re-include a folder that ``*`` excluded); links and other non-files are never packed.
* ``bundleDependencies`` are added from ``node_modules`` with their own ``package.json``
  rules (their ignore files are not read), and their production and optional
  dependencies after them.

Patterns match as npm's minimatch does (case-insensitive, dotfiles included, a pattern
without a slash matches the base name); each one is translated by ``pathspec``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

try:  # pathspec >= 1.0
    from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern as _Pattern
except ImportError:  # pragma: no cover - pathspec 0.12
    from pathspec.patterns.gitwildmatch import GitWildMatchPattern as _Pattern

from seawall.engine import Target

DEFAULT_RULES = [
    ".npmignore",
    ".gitignore",
    "**/.git",
    "**/.svn",
    "**/.hg",
    "**/CVS",
    "**/.git/**",
    "**/.svn/**",
    "**/.hg/**",
    "**/CVS/**",
    "/.lock-wscript",
    "/.wafpickle-*",
    "/build/config.gypi",
    "npm-debug.log",
    "**/.npmrc",
    ".*.swp",
    ".DS_Store",
    "**/.DS_Store/**",
    "._*",
    "**/._*/**",
    "*.orig",
    "/archived-packages/**",
]
"""Applied in every directory except inside bundled dependencies."""

STRICT_DEFAULTS = ["/.git"]

PACKAGE_STRICT = [
    "!/package.json",
    "!/readme{,.*[^~$]}",
    "!/copying{,.*[^~$]}",
    "!/license{,.*[^~$]}",
    "!/licence{,.*[^~$]}",
    "/.git",
    "/node_modules",
    ".npmrc",
    "/package-lock.json",
    "/yarn.lock",
    "/pnpm-lock.yaml",
    "/bun.lockb",
]
"""A package root's strict rules, after any ``files`` entry that names a single file."""

_DEFAULTS, _FILES, _NPMIGNORE, _GITIGNORE, _STRICT = (
    "defaults",
    "package.json",
    ".npmignore",
    ".gitignore",
    "strict",
)


def _expand_braces(pattern: str) -> list[str]:
    """``a{b,c}d`` as ``abd`` and ``acd`` (what minimatch does before matching)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [x for alt in match.group(1).split(",") for x in _expand_braces(head + alt + tail)]


@functools.lru_cache(maxsize=4096)
def _exact(glob: str) -> re.Pattern[str] | None:
    """A regex matching exactly the paths ``glob`` names (not what lies below them)."""
    if glob in ("", "/"):
        return None
    source, include = _Pattern.pattern_to_regex(glob)
    if source is None or include is None:
        return None
    if source == ".":  # "*" and the like: any non-empty name
        return re.compile("^[^/]+$", re.IGNORECASE | re.DOTALL)
    for suffix in ("(?:(?P<ps_d>/)|$)", "(?:/|$)", "(?P<ps_d>/)", "/", "$"):
        if source.endswith(suffix):
            source = source[: -len(suffix)]
            break
    if glob.endswith("/**"):
        source += "/.*$"
    elif glob.endswith("/"):
        source += "/$"
    else:
        source += "$"
    return re.compile(source, re.IGNORECASE | re.DOTALL)


class _Rule:
    """One line of an ignore file, matched as minimatch (matchBase, dot, nocase) would."""

    def __init__(self, line: str) -> None:
        body = line
        negate = False
        while body.startswith("!"):
            negate = not negate
            body = body[1:]
        self.negate = negate
        body = re.sub("/{2,}", "/", body)  # minimatch collapses repeated slashes
        self.alternatives: list[tuple[bool, list[str], re.Pattern[str] | None]] = []
        relative = False
        for alt in _expand_braces(body):
            parts = alt.split("/")
            base = len(parts) == 1  # no slash: matched against the base name
            if len(parts) <= (1 if parts[-1] else 2):
                relative = True
            anchored = alt if base or alt.startswith("/") else "/" + alt
            self.alternatives.append((base, parts, _exact(anchored)))
        self.relative = relative

    def match(self, path: str, partial: bool = False) -> bool:
        anchored = path.startswith("/")
        rel = path[1:] if anchored else path
        name: str | None = None
        for base, parts, regex in self.alternatives:
            if regex is None:
                continue
            if base:  # the last non-empty part of the path
                if name is None:
                    name = rel.rstrip("/").rpartition("/")[2]
                if name and regex.match(name):
                    return True
            elif (anchored == (parts[0] == "") and regex.match(rel)) or (
                partial and self._partial(parts, path)
            ):
                return True
        return False

    @staticmethod
    def _partial(parts: list[str], path: str) -> bool:
        """Whether ``path`` could be a folder on the way to a match (minimatch's partial)."""
        segments = path.split("/")
        if len(segments) >= len(parts):
            return False
        prefix = parts[: len(segments)]
        if "**" in prefix:
            prefix = prefix[: prefix.index("**") + 1]
        glob = "/".join(prefix)
        if prefix == [""]:
            return segments == [""]
        rel = path.removeprefix("/")
        if (path.startswith("/")) != (parts[0] == ""):
            return False
        anchored = glob if glob.startswith("/") else "/" + glob
        regex = _exact(anchored)
        return bool(regex and regex.match(rel))


def _rules(text: str) -> list[_Rule]:
    lines = (line.strip() for line in text.splitlines())
    return [_Rule(line) for line in lines if line and not line.startswith("#")]


@functools.cache
def _default_rules() -> list[_Rule]:
    return _rules("\n".join(DEFAULT_RULES))


class _Walker:
    def __init__(
        self,
        path: Path,
        *,
        parent: _Walker | None = None,
        order: list[str],
        package: dict[str, Any] | None = None,
        required: list[str] | None = None,
        exact: bool = False,
        result: set[str],
        rel: str = "",
    ) -> None:
        self.path = path
        self.parent = parent
        self.order = order
        self.package = package
        self.required = required or []
        self.exact = exact
        self.result = result
        self.rel = rel  # from the walk's own root, with a trailing slash
        self.rules: dict[str, list[_Rule] | None] = {}
        self.rules[_DEFAULTS] = _default_rules()
        if package is None:
            self.rules[_STRICT] = _rules(
                "\n".join(STRICT_DEFAULTS + ["!" + f for f in self.required])
            )

    def run(self) -> None:
        try:
            names = os.listdir(self.path)
        except OSError:
            return
        for name in (_NPMIGNORE, _GITIGNORE):
            if name in self.order and name in names:
                try:
                    self.rules[name] = _rules((self.path / name).read_text("utf-8"))
                except (OSError, UnicodeDecodeError):
                    pass
        if self.package is not None and "package.json" in names:
            self._package_rules()
        if self.rules.get(_FILES):
            self.rules[_NPMIGNORE] = self.rules[_GITIGNORE] = None
        elif self.rules.get(_NPMIGNORE):
            self.rules[_GITIGNORE] = None
        # ignore-walk filters each name as a file and as a folder before it stats it;
        # stating first and asking only what the type needs gives the same answer.
        for name in sorted(names):
            if "*" in name:  # refused by npm (a bad name on Windows)
                continue
            try:
                st = (self.path / name).lstat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                if self.filter(name):
                    self.result.add(self.rel + name)
            elif stat.S_ISDIR(st.st_mode) and self.filter(name, partial=True):
                exact = self.filter(name) or self.filter(name + "/")
                self._child(name, exact).run()

    def _child(self, name: str, exact: bool) -> _Walker:
        required = [
            f[len(name) + 1 :]
            for f in self.required
            if f.startswith(name + "/") and "/" not in f[len(name) + 1 :]
        ]
        return _Walker(
            self.path / name,
            parent=self,
            order=[_DEFAULTS, _NPMIGNORE, _GITIGNORE, _STRICT],
            required=required,
            exact=exact,
            result=self.result,
            rel=self.rel + name + "/",
        )

    def _package_rules(self) -> None:
        pkg = self.package or {}
        strict = list(STRICT_DEFAULTS) + PACKAGE_STRICT
        files = pkg.get("files")
        if isinstance(files, list):
            ignores: list[str] = []
            for entry in files:
                if not isinstance(entry, str):
                    continue
                if entry.startswith("./"):
                    entry = entry[1:]
                if entry.endswith("/*"):
                    entry += "*"
                inverse = "!" + entry
                try:
                    st = os.lstat(self.path / entry.lstrip("!").lstrip("/"))
                except (OSError, ValueError):
                    ignores.append(inverse)  # a pattern
                    continue
                if stat.S_ISREG(st.st_mode):
                    strict.insert(0, inverse)
                    self.required.append(entry.removeprefix("/"))
                elif stat.S_ISDIR(st.st_mode):
                    ignores += [inverse, inverse + "/**"]
            self.rules[_FILES] = _rules("\n".join(["*", *ignores]))
        for key in ("browser", "main"):  # as written: "./index.js" does not match
            if isinstance(pkg.get(key), str) and pkg[key]:
                strict.append("!/" + pkg[key])
        for target in _bins(pkg):
            strict.append("!/" + target)
        self.rules[_STRICT] = _rules("\n".join(strict))

    def filter(self, entry: str, partial: bool = False, basename: str | None = None) -> bool:
        included = True
        if self.parent is not None:
            own = self.rel.rstrip("/").rsplit("/", 1)[-1]
            included = self.parent.filter(own + "/" + entry, partial, basename or entry)
            if not included and not self.exact:
                return False
        for key in self.order:
            for rule in self.rules.get(key) or ():
                if rule.negate == included:
                    continue
                if self._matches(rule, entry, partial, basename):
                    included = rule.negate
        return included

    @staticmethod
    def _matches(rule: _Rule, entry: str, partial: bool, basename: str | None) -> bool:
        """ignore-walk's tries: the entry as /path and path; for a folder also with a
        trailing slash, a negation as a possible prefix, and a one-part rule by base name."""
        if rule.match("/" + entry) or rule.match(entry):
            return True
        if not partial:
            return False
        if rule.match("/" + entry + "/") or rule.match(entry + "/"):
            return True
        if rule.negate and (rule.match("/" + entry, True) or rule.match(entry, True)):
            return True
        if basename is None or not rule.relative:
            return False
        if rule.match("/" + basename + "/") or rule.match(basename + "/"):
            return True
        return rule.negate and (rule.match("/" + basename, True) or rule.match(basename, True))


def _normal(path: str) -> str:
    """``./bin/x.js`` as ``bin/x.js``, as npm's ``package.json`` normalisation writes it."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


def _bins(pkg: dict[str, Any]) -> list[str]:
    bin_ = pkg.get("bin")
    if isinstance(bin_, str):
        return [_normal(bin_)] if bin_ else []
    if isinstance(bin_, dict):
        return [_normal(v) for v in bin_.values() if isinstance(v, str) and v]
    return []


def _read_package(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _walk_package(root: Path, package: dict[str, Any], order: list[str]) -> set[str]:
    result: set[str] = set()
    _Walker(root, order=order, package=package, result=result).run()
    return result


def _names(value: Any) -> list[str]:
    return [k for k in value if isinstance(k, str)] if isinstance(value, dict) else []


def _resolve(dep: str, start: Path, top: Path) -> Path | None:
    """Where node would find ``dep`` from the package at ``start`` (not above ``top``)."""
    folder = start
    while True:
        candidate = folder / "node_modules" / dep
        if candidate.is_dir():
            return candidate
        if folder == top or top not in folder.parents:
            return None
        folder = folder.parent
        while (
            folder.name == "node_modules"
            or folder.parent.name == "node_modules"
            and folder.name.startswith("@")
        ):
            folder = folder.parent


def _bundles(root: Path, package: dict[str, Any], result: set[str]) -> None:
    deps = _names(package.get("dependencies")) + _names(package.get("optionalDependencies"))
    wanted = package.get("bundleDependencies", package.get("bundledDependencies"))
    if wanted is True:  # npm's normalisation: every name of `dependencies`
        wanted = _names(package.get("dependencies"))
    if not isinstance(wanted, list):
        return
    seen: set[Path] = set()
    queue = [(root, dep) for dep in wanted if isinstance(dep, str) and dep in deps]
    while queue:
        start, dep = queue.pop(0)
        found = _resolve(dep, start, root)
        if found is None or found.is_symlink():
            continue  # linked bundles (workspaces) are not supported
        key = found.resolve()
        if key in seen:
            continue
        seen.add(key)
        manifest = _read_package(found)
        rel = found.relative_to(root).as_posix()
        files = _walk_package(found, manifest, [_FILES, _STRICT])
        result.update(f"{rel}/{f}" for f in files)
        more = _names(manifest.get("dependencies")) + _names(manifest.get("optionalDependencies"))
        queue.extend((found, d) for d in more)


def packlist(root: Path) -> list[str]:
    """The files ``npm pack`` / ``npm publish`` would put in the tarball, relative to
    ``root`` (sorted POSIX paths; the tarball names them ``package/<path>``)."""
    root = Path(root)
    package = _read_package(root)
    result = _walk_package(root, package, [_DEFAULTS, _FILES, _NPMIGNORE, _GITIGNORE, _STRICT])
    _bundles(root, package, result)
    return sorted(result)


def npm_target(root: Path, name: str | None = None) -> Target:
    """A target whose scan sees the files ``npm publish`` would send, as ``package/<path>``."""
    root = Path(root)
    return Target(
        name or str(root),
        path=root,
        listing=packlist(root),
        prefix="package/",
        meta={"packlist": "npm"},
    )
