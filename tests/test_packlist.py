"""``seawall.packlist`` against ``npm pack --dry-run --json --ignore-scripts`` on fixture layouts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from builders import FIRST_PARTY_MAP

from seawall.engine import Engine
from seawall.packlist import npm_target, packlist

NPM = shutil.which("npm")

PREPARE = "node -e \"require('fs').writeFileSync('PREPARE_RAN','x');process.exit(1)\""


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
    return root


def manifest(**fields: object) -> str:
    return json.dumps({"name": "fixture", "version": "1.0.0", **fields})


LEAKY = {
    "package.json": manifest(main="dist/index.js", scripts={"prepare": PREPARE}),
    ".env": "AWS_SECRET_ACCESS_KEY=abc\n",
    ".npmrc": "//registry.example.test/:_authToken=x\n",
    "README.md": "# fixture\n",
    "LICENSE": "MIT\n",
    "dist/index.js": "run()\n//# sourceMappingURL=index.js.map\n",
    "dist/index.js.map": FIRST_PARTY_MAP.decode()
    if isinstance(FIRST_PARTY_MAP, bytes)
    else FIRST_PARTY_MAP,
    "src/index.ts": "export const x = 1\n",
    ".DS_Store": "x",
    "._foo": "x",
    "a.orig": "x",
    ".a.swp": "x",
    "npm-debug.log": "x",
    "package-lock.json": "{}",
    "yarn.lock": "",
    "build/config.gypi": "{}",
    "lib/build/config.gypi": "{}",
    ".lock-wscript": "",
    ".wafpickle-1": "",
    "CVS/x": "x",
    ".hg/x": "x",
    "sub/.git": "gitfile",
    "sub/.npmrc": "x",
    "sub/ok.js": "x",
    "node_modules/left-pad/index.js": "x",
    "node_modules/left-pad/package.json": manifest(name="left-pad"),
    "archived-packages/x.tgz": "x",
    "CHANGELOG.md": "x",
    "COPYING": "x",
    "readme~": "x",
    "Licence.txt": "x",
}

LAYOUTS: dict[str, dict[str, str | bytes]] = {
    "no-files-field": LEAKY,
    "files-globs-negation": {
        "package.json": manifest(
            files=["dist", "lib/*.js", "!lib/secret.js", "types/", "one.js", "./docs/*"],
            main="main.js",
            bin={"tool": "./bin/tool.js"},
        ),
        "main.js": "x",
        "bin/tool.js": "x",
        "bin/other.js": "x",
        "dist/a.js": "x",
        "dist/a.js.map": "{}",
        "dist/deep/b.js": "x",
        "dist/.npmignore": "*.map\n",
        "lib/a.js": "x",
        "lib/secret.js": "x",
        "lib/a.ts": "x",
        "lib/sub/c.js": "x",
        "types/index.d.ts": "x",
        "docs/a.md": "x",
        "docs/x/b.md": "x",
        "one.js": "x",
        "two.js": "x",
        ".env": "x",
        "README": "x",
        "license.md": "x",
        ".npmignore": "dist\n",
        ".gitignore": "types\n",
    },
    "npmignore-over-gitignore": {
        "package.json": manifest(),
        ".gitignore": "dist/\n*.log\n",
        ".npmignore": "*.map\ntest/\n/secret.txt\n",
        "dist/a.js": "x",
        "dist/a.js.map": "x",
        "x.log": "x",
        "test/t.js": "x",
        "secret.txt": "x",
        "deep/secret.txt": "x",
    },
    "nested-gitignore": {
        "package.json": manifest(),
        ".gitignore": "*.log\n",
        "a.log": "x",
        "pkg/.gitignore": "generated/\n!keep.log\n*.tmp\n",
        "pkg/keep.log": "x",
        "pkg/other.log": "x",
        "pkg/generated/g.js": "x",
        "pkg/x.tmp": "x",
        "pkg/inner/y.tmp": "x",
        "pkg/inner/.npmignore": "z.js\n",
        "pkg/inner/z.js": "x",
        "pkg/inner/w.js": "x",
        "generated/top.js": "x",
    },
    "bin-main-outside-files": {
        "package.json": manifest(
            files=["lib"],
            main="./index.js",
            browser="browser.js",
            bin={"a": "cli/a.js", "b": "./cli/b.js"},
        ),
        "index.js": "x",
        "browser.js": "x",
        "cli/a.js": "x",
        "cli/b.js": "x",
        "cli/c.js": "x",
        "lib/l.js": "x",
        "README.markdown": "x",
        "other.js": "x",
    },
    "bundled-dependencies": {
        "package.json": manifest(
            dependencies={"a": "1.0.0", "c": "1.0.0"},
            devDependencies={"d": "1.0.0"},
            bundleDependencies=["a", "d"],
        ),
        "index.js": "x",
        "node_modules/a/package.json": manifest(name="a", dependencies={"b": "1"}),
        "node_modules/a/index.js": "x",
        "node_modules/a/.npmignore": "index.js\n",
        "node_modules/a/.DS_Store": "x",
        "node_modules/a/lib/x.js": "x",
        "node_modules/a/lib/.DS_Store": "x",
        "node_modules/a/node_modules/e/package.json": manifest(name="e"),
        "node_modules/b/package.json": manifest(name="b", files=["main.js"]),
        "node_modules/b/main.js": "x",
        "node_modules/b/extra.js": "x",
        "node_modules/c/package.json": manifest(name="c"),
        "node_modules/c/index.js": "x",
        "node_modules/d/package.json": manifest(name="d"),
        "node_modules/d/index.js": "x",
    },
    "glob-deep": {
        "package.json": manifest(files=["dist/**/*.js", "!dist/**/*.test.js"]),
        "dist/a.js": "",
        "dist/a.test.js": "",
        "dist/x/b.js": "",
        "dist/x/b.test.js": "",
        "dist/x/c.css": "",
        "other.js": "",
    },
    "star-js": {"package.json": manifest(files=["*.js"]), "a.js": "", "lib/x.js": "", "b.ts": ""},
    "npmignore-reinclude": {
        "package.json": manifest(),
        ".npmignore": "dist\n!dist/keep.js\n",
        "dist/keep.js": "",
        "dist/other.js": "",
    },
    "scoped-bundle-true": {
        "package.json": manifest(
            dependencies={"@s/x": "1", "y": "1"},
            optionalDependencies={"z": "1"},
            bundleDependencies=True,
        ),
        "node_modules/@s/x/package.json": manifest(name="@s/x"),
        "node_modules/@s/x/i.js": "",
        "node_modules/y/package.json": manifest(name="y"),
        "node_modules/y/node_modules/q/package.json": manifest(name="q"),
        "node_modules/z/package.json": manifest(name="z"),
        "node_modules/z/.gitignore": "*.js\n",
        "node_modules/z/a.js": "",
    },
    "case": {
        "package.json": manifest(),
        ".npmignore": "*.MD\n# c\n  spaced.txt  \n\\#hash\n",
        "Readme.md": "",
        "notes.md": "",
        "LICENSE-MIT": "",
        "spaced.txt": "",
        "#hash": "",
        "licence.txt~": "",
        "Copying.txt": "",
    },
    "gitignore-anchored": {
        "package.json": manifest(),
        ".gitignore": "/build\nout/\n*.log\n!important.log\n",
        "build/a": "",
        "src/build/b": "",
        "out": "",
        "src/out/c": "",
        "a.log": "",
        "important.log": "",
        "src/important.log": "",
    },
    "files-dir-with-npmignore": {
        "package.json": manifest(files=["lib/", "./x.js", "missing", "lib/sub/deep.js"]),
        "lib/.npmignore": "*.map\n",
        "lib/a.js": "",
        "lib/a.js.map": "",
        "lib/sub/deep.js": "",
        "lib/sub/y.js": "",
        "x.js": "",
        ".gitignore": "lib\n",
    },
    "empty-files": {
        "package.json": manifest(files=[]),
        "README": "",
        "index.js": "",
        "LICENSE": "",
    },
    "nested-node-modules": {
        "package.json": manifest(),
        "lib/node_modules/x.js": "",
        "lib/package-lock.json": "",
        "lib/.npmrc": "",
        "lib/yarn.lock": "",
    },
}
LINKS = {"case": {"link.md": "Readme.md"}}
"""Symbolic links per layout (npm never packs them)."""


def npm_files(root: Path) -> list[str]:
    assert NPM is not None
    out = subprocess.run(
        [NPM, "pack", "--dry-run", "--json", "--ignore-scripts", "--offline", "--loglevel=silent"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return sorted(f["path"] for f in json.loads(out)[0]["files"])


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_packlist_matches_npm(layout: str, tmp_path: Path) -> None:
    if NPM is None:
        pytest.skip("npm is not installed")
    root = write(tmp_path / layout, LAYOUTS[layout])
    for link, to in LINKS.get(layout, {}).items():
        (root / link).symlink_to(to)
    ours = packlist(root)
    assert ours == npm_files(root)
    assert not (root / "PREPARE_RAN").exists()


def test_leaky_layout_ships_env_and_map_not_npmrc(tmp_path: Path) -> None:
    root = write(tmp_path / "p", LEAKY)
    files = packlist(root)
    assert {".env", "dist/index.js.map", "package.json", "README.md"} <= set(files)
    assert not {".npmrc", "sub/.npmrc", "node_modules/left-pad/index.js"} & set(files)
    assert not (root / "PREPARE_RAN").exists()


def test_npm_target_scan_sees_package_paths(tmp_path: Path) -> None:
    root = write(tmp_path / "p", LEAKY)
    result = Engine().scan_target(npm_target(root))
    assert not (root / "PREPARE_RAN").exists()
    seen = {(f.rule, f.path) for f in result.findings}
    assert ("file.env", "package/.env") in seen
    assert any(
        rule.startswith("sourcemap.") and path == "package/dist/index.js.map" for rule, path in seen
    )
    assert not any(
        path.startswith(("package/.npmrc", "package/node_modules", "package/src"))
        for _, path in seen
    )
