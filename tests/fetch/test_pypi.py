"""PyPI specs against a local index: PEP 691 JSON and PEP 503 HTML pages, whole releases, hashes."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from builders import compress, tar_bytes, zip_bytes

from seawall.fetch import resolve
from seawall.fetch.http import FetchError
from seawall.fetch.pypi import index_url

if TYPE_CHECKING:
    from conftest import Registry

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


def sdist(name: str, version: str) -> bytes:
    return compress(
        tar_bytes(
            {"PKG-INFO": f"Name: {name}\nVersion: {version}\n".encode()},
            prefix=f"{name}-{version}/",
        ),
        "gz",
    )


def wheel(name: str, version: str, tag: str) -> bytes:
    return zip_bytes(
        {
            f"{name}/__init__.py": f"# {tag}\n".encode(),
            f"{name}-{version}.dist-info/METADATA": f"Version: {version}\n".encode(),
        }
    )


def artifact(filename: str) -> bytes:
    stem = filename.removesuffix(".tar.gz").removesuffix(".whl")
    name, version = stem.split("-")[:2]
    return sdist(name, version) if filename.endswith(".tar.gz") else wheel(name, version, stem)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serve_files(registry: Registry, filenames: list[str]) -> dict[str, bytes]:
    files = {name: artifact(name) for name in filenames}
    for name, data in files.items():
        registry.add(f"/packages/{name}", data)
    return files


def json_index(
    registry: Registry,
    project: str,
    files: dict[str, bytes],
    *,
    yanked: dict[str, Any] | None = None,
    hashes: dict[str, dict[str, str]] | None = None,
    api: str = "1.1",
) -> None:
    entries = [
        {
            "filename": name,
            "url": f"../../packages/{name}",
            "hashes": (hashes or {}).get(name, {"sha256": sha256(data)}),
            "yanked": (yanked or {}).get(name, False),
        }
        for name, data in files.items()
    ]
    doc = {"meta": {"api-version": api}, "name": project, "files": entries}
    registry.add(f"/simple/{project}/", json.dumps(doc), JSON_TYPE)


def html_index(
    registry: Registry,
    project: str,
    files: dict[str, bytes],
    *,
    yanked: dict[str, str] | None = None,
) -> None:
    """As pypiserver writes it: HTML whatever the Accept header, relative links, #sha256=."""
    links = []
    for name, data in files.items():
        extra = f' data-yanked="{yanked[name]}"' if yanked and name in yanked else ""
        links.append(f'<a href="../../packages/{name}#sha256={sha256(data)}"{extra}>{name}</a><br>')
    page = f"<!DOCTYPE html><html><body><h1>Links for {project}</h1>{''.join(links)}</body></html>"
    registry.add(f"/simple/{project}/", page, "text/html; charset=utf-8")


@pytest.fixture
def index(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("PIP_INDEX_URL", registry.url + "/simple")
    return registry


RELEASE_1 = [
    "demo_pkg-1.0.tar.gz",
    "demo_pkg-1.0-py3-none-any.whl",
    "demo_pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
]


def test_json_index_release_is_every_file_verified(index: Registry, tmp_path: Path) -> None:
    files = serve_files(index, [*RELEASE_1, "demo_pkg-2.0.tar.gz"])
    json_index(index, "demo-pkg", files)

    target = resolve("pypi:Demo_Pkg==1.0", cache_dir=tmp_path)

    assert target.error is None
    assert target.name == "pypi:demo-pkg==1.0"
    assert [p.name for p in target.files] == [
        "demo_pkg-1.0.tar.gz",
        "demo_pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        "demo_pkg-1.0-py3-none-any.whl",
    ]
    assert all(p.read_bytes() == files[p.name] for p in target.files)
    assert target.path is None
    page = index.requests[0]
    assert page.path == "/simple/demo-pkg/"
    assert page.headers["accept"].startswith(JSON_TYPE)
    assert page.headers["user-agent"].startswith("seawall/")
    assert target.meta["index"] == index.url + "/simple/"
    assert target.meta["version"] == "1.0"
    assert target.meta["files"][0] == {
        "filename": "demo_pkg-1.0.tar.gz",
        "url": f"{index.url}/packages/demo_pkg-1.0.tar.gz",
        "hash": "sha256:" + sha256(files["demo_pkg-1.0.tar.gz"]),
        "yanked": None,
    }


def test_html_index_with_relative_links_and_hash_fragments(index: Registry, tmp_path: Path) -> None:
    files = serve_files(index, RELEASE_1)
    html_index(index, "demo-pkg", files)

    target = resolve("pypi:demo-pkg==1.0", cache_dir=tmp_path)

    assert target.error is None
    assert sorted(p.name for p in target.files) == sorted(RELEASE_1)
    assert all(f["hash"].startswith("sha256:") for f in target.meta["files"])


def test_latest_skips_prereleases_and_yanked_releases(index: Registry, tmp_path: Path) -> None:
    files = serve_files(
        index,
        [
            "demo_pkg-1.0.tar.gz",
            "demo_pkg-1.1.tar.gz",
            "demo_pkg-1.1-py3-none-any.whl",
            "demo_pkg-2.0rc1.tar.gz",
        ],
    )
    html_index(
        index,
        "demo-pkg",
        files,
        yanked={"demo_pkg-1.1.tar.gz": "broken", "demo_pkg-1.1-py3-none-any.whl": ""},
    )

    latest = resolve("pypi:demo-pkg", cache_dir=tmp_path)
    pinned = resolve("pypi:demo-pkg==1.1", cache_dir=tmp_path)

    assert (latest.error, latest.name) == (None, "pypi:demo-pkg==1.0")
    assert (pinned.error, pinned.name) == (None, "pypi:demo-pkg==1.1")
    assert [f["yanked"] for f in pinned.meta["files"]] == ["broken", ""]
    # the release before 2.0rc1 that was not yanked; before 1.0, none
    assert resolve("pypi:demo-pkg==2.0rc1", cache_dir=tmp_path).meta["previous"] == "pypi:demo-pkg==1.0"
    assert latest.meta["previous"] is None


def test_prerelease_is_latest_only_when_nothing_else_exists(
    index: Registry, tmp_path: Path
) -> None:
    files = serve_files(index, ["demo_pkg-0.1a1.tar.gz", "demo_pkg-0.1b2.tar.gz"])
    json_index(index, "demo-pkg", files)

    target = resolve("pypi:demo-pkg", cache_dir=tmp_path)

    assert (target.error, target.name) == (None, "pypi:demo-pkg==0.1b2")


def test_all_yanked_needs_an_explicit_version(index: Registry, tmp_path: Path) -> None:
    files = serve_files(index, ["demo_pkg-1.0.tar.gz"])
    json_index(index, "demo-pkg", files, yanked={"demo_pkg-1.0.tar.gz": True})

    target = resolve("pypi:demo-pkg", cache_dir=tmp_path)

    assert (
        target.error is not None
        and "every release of PyPI project demo-pkg is yanked" in target.error
    )


def test_unparsable_and_foreign_files_are_ignored(index: Registry, tmp_path: Path) -> None:
    files = serve_files(index, RELEASE_1[:1])
    for odd in (
        "demo_pkg-1.0-py3.11.egg",
        "demo_pkg-1.0.win32.exe",
        "notes.txt",
        "other_pkg-1.0.tar.gz",
        "demo_pkg-notaversion!.tar.gz",
    ):
        files[odd] = b"x"
    json_index(index, "demo-pkg", files)

    target = resolve("pypi:demo-pkg", cache_dir=tmp_path)

    assert target.error is None
    assert [p.name for p in target.files] == ["demo_pkg-1.0.tar.gz"]


def test_equal_versions_match_however_written(index: Registry, tmp_path: Path) -> None:
    json_index(index, "demo-pkg", serve_files(index, RELEASE_1[:2]))

    target = resolve("pypi:demo.pkg==1.0.0", cache_dir=tmp_path)

    assert (target.error, target.name) == (None, "pypi:demo-pkg==1.0")


def test_hash_mismatch_names_package_and_file(index: Registry, tmp_path: Path) -> None:
    files = serve_files(index, RELEASE_1[:2])
    json_index(
        index, "demo-pkg", files, hashes={"demo_pkg-1.0-py3-none-any.whl": {"sha256": "0" * 64}}
    )

    target = resolve("pypi:demo-pkg==1.0", cache_dir=tmp_path)

    assert target.files == []
    assert target.error is not None
    assert target.error.startswith(
        "demo-pkg==1.0: integrity check failed for demo-pkg==1.0 file "
        f"demo_pkg-1.0-py3-none-any.whl: expected sha256:{'0' * 64}, got sha256:"
    )


def test_strongest_hash_is_used_and_unknown_algorithms_ignored(
    index: Registry, tmp_path: Path
) -> None:
    files = serve_files(index, RELEASE_1[:1])
    data = files[RELEASE_1[0]]
    json_index(
        index,
        "demo-pkg",
        files,
        hashes={
            RELEASE_1[0]: {
                "sha256": "0" * 64,
                "sha512": hashlib.sha512(data).hexdigest(),
                "blake2b_256": "zz",
            }
        },
    )

    target = resolve("pypi:demo-pkg==1.0", cache_dir=tmp_path)

    assert target.error is None
    assert target.meta["files"][0]["hash"].startswith("sha512:")


def test_corrupt_cached_file_is_downloaded_again(index: Registry, tmp_path: Path) -> None:
    files = serve_files(index, RELEASE_1)
    json_index(index, "demo-pkg", files)
    first = resolve("pypi:demo-pkg==1.0", cache_dir=tmp_path)
    first.files[1].write_bytes(b"bit rot")

    again = resolve("pypi:demo-pkg==1.0", cache_dir=tmp_path)

    assert again.error is None and again.files == first.files
    assert [index.hits(f"/packages/{name}") for name in RELEASE_1] == [1, 1, 2]
    assert all(p.read_bytes() == files[p.name] for p in again.files)


def test_unknown_version_and_unknown_project(index: Registry, tmp_path: Path) -> None:
    json_index(index, "demo-pkg", serve_files(index, RELEASE_1[:1]))

    version = resolve("pypi:demo-pkg==9.0", cache_dir=tmp_path)
    project = resolve("pypi:no-such-project", cache_dir=tmp_path)

    assert (
        version.error
        == f"PyPI project demo-pkg has no version 9.0 on {index.url}/simple/ (latest is 1.0)"
    )
    assert project.error == f"PyPI project no-such-project not found on {index.url}/simple/"


def test_newer_simple_api_major_version_is_refused(index: Registry, tmp_path: Path) -> None:
    json_index(index, "demo-pkg", serve_files(index, RELEASE_1[:1]), api="2.0")

    target = resolve("pypi:demo-pkg", cache_dir=tmp_path)

    assert target.error is not None and "Simple API version 2.0" in target.error


@pytest.mark.parametrize(
    "spec", ["pypi:", "pypi:-bad", "pypi:a/../b", "pypi:demo>=1", "pypi:demo==not a version"]
)
def test_invalid_specs_never_reach_the_network(index: Registry, tmp_path: Path, spec: str) -> None:
    target = resolve(spec, cache_dir=tmp_path)

    assert target.name == spec and target.error is not None
    assert index.requests == []


def test_credentials_in_the_index_url_stay_out_of_the_report(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", registry.url.replace("//", "//user:s3cret@") + "/simple/")
    json_index(registry, "demo-pkg", serve_files(registry, RELEASE_1[:1]))

    target = resolve("pypi:demo-pkg", cache_dir=tmp_path)

    assert target.error is None
    assert "s3cret" not in json.dumps(target.meta)
    assert target.meta["index"] == registry.url.replace("//", "//***@") + "/simple/"
    expected = "Basic " + base64.b64encode(b"user:s3cret").decode()
    assert registry.requests[0].headers["authorization"] == expected


def test_index_down_is_a_quick_error_target(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, closed_port: int
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{closed_port}/simple/")
    started = time.monotonic()

    target = resolve("pypi:demo-pkg==1.0", cache_dir=tmp_path)

    assert time.monotonic() - started < 5
    assert target.name == "pypi:demo-pkg==1.0" and target.files == []
    assert target.error is not None and target.error.startswith("could not connect to 127.0.0.1")


def test_index_url_from_env_then_pip_config_files(tmp_path: Path) -> None:
    first, second, broken = (
        tmp_path / "global.conf",
        tmp_path / "user.conf",
        tmp_path / "broken.conf",
    )
    first.write_text("[global]\nindex-url = https://global.example/simple\n")
    second.write_text(
        "[global]\nextra-index-url = https://extra.example/\nindex_url=https://user.example/pypi/\n"
    )
    broken.write_text("index-url = no section\n")

    assert index_url(env={}, files=[first]) == "https://global.example/simple/"
    assert (
        index_url(env={}, files=[first, second, tmp_path / "missing.conf"])
        == "https://user.example/pypi/"
    )
    assert (
        index_url(env={"PIP_INDEX_URL": "http://env.example/s"}, files=[first])
        == "http://env.example/s/"
    )
    assert index_url(env={}, files=[]) == "https://pypi.org/simple/"
    with pytest.raises(FetchError, match="cannot read pip configuration"):
        index_url(env={}, files=[broken])


def test_pip_config_file_env_is_honoured(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://conf.example/simple/\n")

    assert index_url(env={"PIP_CONFIG_FILE": str(conf)}) == "https://conf.example/simple/"


@pytest.mark.network
def test_real_index_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://pypi.org/simple/")

    target = resolve("pypi:requests==2.32.3", cache_dir=tmp_path)

    assert target.error is None
    assert target.name == "pypi:requests==2.32.3"
    digests = {p.name: sha256(p.read_bytes()) for p in target.files}
    assert digests == {
        "requests-2.32.3.tar.gz": (
            "55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760"
        ),
        "requests-2.32.3-py3-none-any.whl": (
            "70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6"
        ),
    }
