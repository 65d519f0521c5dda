"""npm specs against a local registry: packuments, dist-tags, integrity, the cache, failures."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from builders import compress, tar_bytes

from seawall.fetch import is_registry_spec, resolve
from seawall.fetch.http import USER_AGENT
from seawall.fetch.npm import parse_spec, registry_for

if TYPE_CHECKING:
    from conftest import Registry


def tgz(name: str, version: str) -> bytes:
    manifest = json.dumps({"name": name, "version": version}).encode()
    return compress(
        tar_bytes(
            {"package.json": manifest, "index.js": b"module.exports = 1;\n"}, prefix="package/"
        ),
        "gz",
    )


def sri(data: bytes, algorithm: str = "sha512") -> str:
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def publish(
    registry: Registry,
    name: str,
    versions: dict[str, bytes],
    *,
    tags: dict[str, str] | None = None,
    dist: dict[str, dict[str, Any]] | None = None,
    reduced: bool = False,
) -> dict[str, Any]:
    """Serve a packument for ``name`` and a tarball per version; return the packument."""
    base = name.rsplit("/", 1)[-1]
    doc: dict[str, Any] = {"_id": name, "name": name, "versions": {}}
    for version, data in versions.items():
        tarball = registry.add(f"/{name}/-/{base}-{version}.tgz", data)
        entry = {
            "tarball": tarball,
            "integrity": sri(data),
            "shasum": hashlib.sha1(data).hexdigest(),
        }
        entry.update((dist or {}).get(version, {}))
        doc["versions"][version] = {
            "name": name,
            "version": version,
            "dist": {k: v for k, v in entry.items() if v is not None},
        }
    if not reduced:
        doc["dist-tags"] = tags if tags is not None else {"latest": list(versions)[-1]}
    registry.add("/" + name.replace("/", "%2f"), json.dumps(doc), "application/json")
    return doc


@pytest.fixture
def npm(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", registry.url + "/")
    return registry


def test_exact_version_is_downloaded_and_verified(npm: Registry, tmp_path: Path) -> None:
    data = tgz("leaky", "1.0.0")
    publish(npm, "leaky", {"1.0.0": data, "1.1.0": tgz("leaky", "1.1.0")})

    target = resolve("npm:leaky@1.0.0", cache_dir=tmp_path)

    assert target.error is None
    assert target.name == "npm:leaky@1.0.0"
    assert target.path is not None and target.path.name == "leaky-1.0.0.tgz"
    assert target.path.read_bytes() == data
    assert tmp_path in target.path.parents
    assert target.meta == {
        "ecosystem": "npm",
        "registry": npm.url + "/",
        "name": "leaky",
        "version": "1.0.0",
        "tarball": f"{npm.url}/leaky/-/leaky-1.0.0.tgz",
        "integrity": sri(data),
        "cached": False,
        "previous": None,
    }
    assert {r.headers["user-agent"] for r in npm.requests} == {USER_AGENT}
    assert USER_AGENT.startswith("seawall/")


def test_scoped_name_is_escaped_and_normalised(npm: Registry, tmp_path: Path) -> None:
    publish(npm, "@acme/leaky-demo", {"2.1.88": tgz("@acme/leaky-demo", "2.1.88")})

    target = resolve("npm:@acme/leaky-demo@2.1.88", cache_dir=tmp_path)

    assert target.error is None
    assert target.name == "npm:@acme/leaky-demo@2.1.88"
    assert target.path is not None and target.path.name == "leaky-demo-2.1.88.tgz"
    assert npm.requests[0].path.lower() == "/@acme%2fleaky-demo"


def test_previous_release_is_named_for_against_previous(npm: Registry, tmp_path: Path) -> None:
    publish(npm, "leaky", {v: tgz("leaky", v) for v in ("0.9.0", "1.0.0", "1.1.0-beta.1", "1.1.0")})
    assert resolve("npm:leaky@1.1.0", cache_dir=tmp_path).meta["previous"] == "npm:leaky@1.0.0"
    assert resolve("npm:leaky@1.0.0", cache_dir=tmp_path).meta["previous"] == "npm:leaky@0.9.0"
    assert resolve("npm:leaky@0.9.0", cache_dir=tmp_path).meta["previous"] is None


def test_no_version_means_latest_dist_tag(npm: Registry, tmp_path: Path) -> None:
    publish(
        npm,
        "leaky",
        {"1.0.0": tgz("leaky", "1.0.0"), "2.0.0-beta.1": tgz("leaky", "2")},
        tags={"latest": "1.0.0", "next": "2.0.0-beta.1"},
    )

    latest = resolve("npm:leaky", cache_dir=tmp_path)
    tagged = resolve("npm:leaky@next", cache_dir=tmp_path)

    assert (latest.error, latest.name) == (None, "npm:leaky@1.0.0")
    assert (tagged.error, tagged.name) == (None, "npm:leaky@2.0.0-beta.1")
    assert tagged.meta["requested"] == "next"


def test_reduced_packument_without_dist_tags_falls_back_to_highest_release(
    npm: Registry, tmp_path: Path
) -> None:
    publish(
        npm, "leaky", {v: tgz("leaky", v) for v in ("1.9.0", "1.10.0", "2.0.0-rc.1")}, reduced=True
    )

    target = resolve("npm:leaky", cache_dir=tmp_path)

    assert (target.error, target.name) == (None, "npm:leaky@1.10.0")


def test_unknown_dist_tag_lists_what_the_registry_has(npm: Registry, tmp_path: Path) -> None:
    publish(npm, "leaky", {"1.0.0": tgz("leaky", "1.0.0")})

    target = resolve("npm:leaky@beta", cache_dir=tmp_path)

    assert target.name == "npm:leaky@beta" and target.path is None
    assert target.error == (
        f"npm package leaky has no version or dist-tag 'beta' on {npm.url}/ "
        "(latest is 1.0.0; dist-tags: latest)"
    )


def test_missing_version_is_an_error_target(npm: Registry, tmp_path: Path) -> None:
    publish(npm, "leaky", {"1.0.0": tgz("leaky", "1.0.0")})

    target = resolve("npm:leaky@9.9.9", cache_dir=tmp_path)

    assert target.path is None
    assert target.error is not None and "no version or dist-tag '9.9.9'" in target.error


def test_unknown_package_is_an_error_target(npm: Registry, tmp_path: Path) -> None:
    target = resolve("npm:@acme/nothing@1.0.0", cache_dir=tmp_path)

    assert target.error == f"npm package @acme/nothing not found on {npm.url}/"


def test_tampered_tarball_fails_integrity_and_leaves_nothing_behind(
    npm: Registry, tmp_path: Path
) -> None:
    publish(npm, "leaky", {"1.0.0": tgz("leaky", "1.0.0")})
    npm.add("/leaky/-/leaky-1.0.0.tgz", tgz("leaky", "1.0.0-evil"))

    target = resolve("npm:leaky@1.0.0", cache_dir=tmp_path)

    assert target.path is None
    assert target.error is not None
    assert target.error.startswith(
        "leaky@1.0.0: integrity check failed for leaky@1.0.0 tarball leaky-1.0.0.tgz"
    )
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_shasum_is_used_when_there_is_no_integrity(npm: Registry, tmp_path: Path) -> None:
    good, bad = tgz("old", "0.1.0"), tgz("old", "0.2.0")
    publish(
        npm,
        "old",
        {"0.1.0": good, "0.2.0": bad},
        dist={"0.1.0": {"integrity": None}, "0.2.0": {"integrity": None, "shasum": "ab" * 20}},
    )

    ok = resolve("npm:old@0.1.0", cache_dir=tmp_path)
    tampered = resolve("npm:old@0.2.0", cache_dir=tmp_path)

    assert ok.error is None
    assert ok.meta["integrity"] == sri(good, "sha1")
    assert tampered.error is not None and "integrity check failed" in tampered.error


def test_strongest_of_several_sri_hashes_decides(npm: Registry, tmp_path: Path) -> None:
    data = tgz("multi", "1.0.0")
    wrong_sha256 = "sha256-" + base64.b64encode(b"\0" * 32).decode()
    wrong_sha512 = "sha512-" + base64.b64encode(b"\0" * 64).decode()
    publish(
        npm,
        "multi",
        {"1.0.0": data, "2.0.0": data},
        dist={
            "1.0.0": {"integrity": f"{wrong_sha256} {sri(data, 'sha384')}?opt {sri(data)}"},
            "2.0.0": {"integrity": f"{sri(data, 'sha256')} {wrong_sha512}"},
        },
    )

    assert resolve("npm:multi@1.0.0", cache_dir=tmp_path).error is None
    error = resolve("npm:multi@2.0.0", cache_dir=tmp_path).error
    assert error is not None and "integrity check failed" in error


def test_cache_is_reused_and_a_corrupt_entry_is_downloaded_again(
    npm: Registry, tmp_path: Path
) -> None:
    data = tgz("leaky", "1.0.0")
    publish(npm, "leaky", {"1.0.0": data})
    tarball = "/leaky/-/leaky-1.0.0.tgz"

    first = resolve("npm:leaky@1.0.0", cache_dir=tmp_path)
    again = resolve("npm:leaky@1.0.0", cache_dir=tmp_path)
    assert first.path == again.path and again.meta["cached"] is True
    assert npm.hits(tarball) == 1

    assert first.path is not None
    first.path.write_bytes(data[:-10] + b"corrupted!")
    repaired = resolve("npm:leaky@1.0.0", cache_dir=tmp_path)

    assert repaired.error is None and repaired.meta["cached"] is False
    assert npm.hits(tarball) == 2
    assert first.path.read_bytes() == data


def test_cache_dir_comes_from_the_environment(
    npm: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(npm, "leaky", {"1.0.0": tgz("leaky", "1.0.0")})
    monkeypatch.setenv("SEAWALL_CACHE_DIR", str(tmp_path / "env-cache"))

    target = resolve("npm:leaky@1.0.0")

    assert target.path is not None and (tmp_path / "env-cache") in target.path.parents


def test_upstream_tarball_urls_are_redirected_to_the_configured_registry(
    npm: Registry, tmp_path: Path
) -> None:
    """A mirror's packument keeps registry.npmjs.org URLs; npm fetches them from the mirror."""
    data = tgz("mirrored", "1.0.0")
    doc = publish(npm, "mirrored", {"1.0.0": data})
    doc["versions"]["1.0.0"]["dist"]["tarball"] = (
        "https://registry.npmjs.org/mirrored/-/mirrored-1.0.0.tgz"
    )
    npm.add("/mirrored", json.dumps(doc), "application/json")

    target = resolve("npm:mirrored@1.0.0", cache_dir=tmp_path)

    assert target.error is None
    assert target.meta["tarball"] == f"{npm.url}/mirrored/-/mirrored-1.0.0.tgz"


def test_registry_down_is_a_quick_error_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, closed_port: int
) -> None:
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{closed_port}/")
    started = time.monotonic()

    target = resolve("npm:leaky@1.0.0", cache_dir=tmp_path)

    assert time.monotonic() - started < 5
    assert target.name == "npm:leaky@1.0.0" and target.path is None
    assert target.error is not None
    assert target.error.startswith("could not connect to 127.0.0.1 for npm package leaky")


def test_server_error_and_bad_json_are_error_targets(npm: Registry, tmp_path: Path) -> None:
    npm.add("/broken", "{not json", "application/json")
    npm.add("/failing", "oops", "text/plain", status=500)

    broken = resolve("npm:broken", cache_dir=tmp_path)
    failing = resolve("npm:failing", cache_dir=tmp_path)

    assert broken.error is not None and "not valid JSON" in broken.error
    assert (
        failing.error
        == f"HTTP 500 Internal Server Error fetching npm package failing from {npm.url}/failing"
    )


def test_overloaded_registry_is_retried(npm: Registry, tmp_path: Path) -> None:
    publish(npm, "busy", {"1.0.0": tgz("busy", "1.0.0")})
    npm.fail_first("/busy", 503, {"Retry-After": "0"})

    target = resolve("npm:busy", cache_dir=tmp_path)

    assert target.error is None
    assert npm.hits("/busy") == 2


def test_oversized_tarball_is_refused(
    npm: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.fetch import cache

    publish(npm, "huge", {"1.0.0": tgz("huge", "1.0.0")})
    monkeypatch.setattr(cache, "MAX_ARTIFACT_BYTES", 100)

    target = resolve("npm:huge@1.0.0", cache_dir=tmp_path)

    assert target.error is not None and "over the 100-byte limit" in target.error


@pytest.mark.parametrize(
    "spec", ["npm:", "npm:@1.0.0", "npm:../../etc/passwd", "npm:a b", "npm:x?y=1"]
)
def test_invalid_names_never_reach_the_network(npm: Registry, tmp_path: Path, spec: str) -> None:
    target = resolve(spec, cache_dir=tmp_path)

    assert target.name == spec
    assert target.error is not None and target.error.startswith("not a valid npm package name")
    assert npm.requests == []


def test_spec_parsing_and_detection() -> None:
    assert parse_spec("@s/n@1.2.3") == ("@s/n", "1.2.3")
    assert parse_spec("@s/n") == ("@s/n", None)
    assert parse_spec("left-pad@") == ("left-pad", None)
    assert is_registry_spec("npm:x") and is_registry_spec("pypi:x")
    assert not is_registry_spec("dist/x.tgz") and not is_registry_spec("C:\\x.tgz")
    assert resolve("nuget:x").error is not None


def test_registry_comes_from_env_then_project_then_user_npmrc(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    (home / ".npmrc").write_text(
        "registry=https://user.example/npm\n@acme:registry=https://acme.example/\n"
        "//user.example/npm/:_authToken=secret\n"
    )
    (project / ".npmrc").write_text('; project\nregistry = "https://${HOST}/"\n')

    assert registry_for("x", env={}, cwd=tmp_path, home=home) == "https://user.example/npm/"
    assert registry_for("@acme/x", env={}, cwd=tmp_path, home=home) == "https://acme.example/"
    assert (
        registry_for("x", env={"HOST": "proj.example"}, cwd=project, home=home)
        == "https://proj.example/"
    )
    env = {"NPM_CONFIG_REGISTRY": "http://env.example"}
    assert registry_for("x", env=env, cwd=project, home=home) == "http://env.example/"
    assert registry_for("@acme/x", env=env, cwd=project, home=home) == "https://acme.example/"
    assert registry_for("x", env={}, cwd=tmp_path, home=tmp_path) == "https://registry.npmjs.org/"


@pytest.mark.network
def test_real_registry_left_pad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/")

    target = resolve("npm:left-pad@1.3.0", cache_dir=tmp_path)

    assert target.error is None
    assert target.path is not None and target.path.name == "left-pad-1.3.0.tgz"
    assert target.meta["integrity"] == (
        "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQGinBN9yTQT3bFlCBy"
        "/aVx2HrNcqQGsdot8ghrjyrvMCoEA=="
    )
    assert sri(target.path.read_bytes()) == target.meta["integrity"]


def test_scan_against_previous_reports_only_what_the_release_adds(
    npm: Registry, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from builders import compress, tar_bytes
    from maps import FIRST_PARTY

    clean = {"package/package.json": b'{"name": "leaky"}', "package/index.js": b"1;\n"}
    releases = {
        "1.0.0": compress(tar_bytes(clean), "gz"),
        "1.0.1": compress(tar_bytes({**clean, "package/index.js.map": FIRST_PARTY}), "gz"),
    }
    publish(npm, "leaky", releases)

    def scan(spec: str) -> tuple[int, dict[str, Any]]:
        run = subprocess.run(
            [sys.executable, "-m", "seawall", "scan", spec, "--against-previous", "--format", "json",
             "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
        return run.returncode, json.loads(run.stdout) if run.stdout else {}

    code, doc = scan("npm:leaky@1.0.1")
    assert code == 1
    assert (doc["old"]["target"], doc["new"]["target"]) == ("npm:leaky@1.0.0", "npm:leaky@1.0.1")
    assert [a["path"] for a in doc["added"]] == ["package/index.js.map"]
    assert [f["rule"] for f in doc["new_findings"]] == ["sourcemap.embedded-source"]
    code, doc = scan("npm:leaky@1.0.0")  # the first release: scanned alone, and clean
    assert code == 0 and doc["findings"] == []


def test_npm_project_against_the_published_release(npm: Registry, tmp_path: Path) -> None:
    import subprocess
    import sys

    from builders import compress, tar_bytes
    from maps import FIRST_PARTY

    published = {"package/package.json": b'{"name": "leaky", "version": "1.0.0"}',
                 "package/index.js": b"1;\n"}
    publish(npm, "leaky", {"1.0.0": compress(tar_bytes(published), "gz")})
    project = tmp_path / "proj"
    project.mkdir()
    (project / "package.json").write_text('{"name": "leaky", "version": "1.0.1"}')
    (project / "index.js").write_text("1;\n")
    (project / "index.js.map").write_bytes(FIRST_PARTY)
    run = subprocess.run([sys.executable, "-m", "seawall", "npm", str(project), "--against-previous",
                          "--format", "json", "--cache-dir", str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    assert doc["old"]["target"] == "npm:leaky@1.0.0"
    assert [a["path"] for a in doc["added"]] == ["package/index.js.map"]
    assert [f["rule"] for f in doc["new_findings"]] == ["sourcemap.embedded-source"]
