"""The registry source's parts without a registry: references, auth challenges, manifests and the platform choice,
and the disk's way out of real layer tars built here (compressions, whiteouts, overrides, digests, tar dialects)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import urllib.parse
from pathlib import Path

import pytest
import zstandard

from pycdi.datapath.errors import PermanentError, TransientError
from pycdi.datapath.sources.registry import from_env
from pycdi.datapath.sources.registry import manifest as mf
from pycdi.datapath.sources.registry.auth import Challenge, parse_challenges, token_from_answer, token_url
from pycdi.datapath.sources.registry.disk import DiskStream, RawBlob, Upper, clean
from pycdi.datapath.sources.registry.reference import Reference, parse
from pycdi.datapath.sources.registry.tarstream import TarStream

DIGEST = "sha256:" + "ab" * 32

# --- references


@pytest.mark.parametrize(("url", "expected"), [
    ("docker://127.0.0.1:5000/pycdi/disk:v1", Reference("127.0.0.1:5000", "pycdi/disk", "v1")),
    ("docker://127.0.0.1:5000/pycdi/disk", Reference("127.0.0.1:5000", "pycdi/disk", "latest")),
    ("docker://quay.io/containerdisks/fedora:39", Reference("quay.io", "containerdisks/fedora", "39")),
    ("docker://localhost/disk", Reference("localhost", "disk", "latest")),
    ("docker://registry:5000/a/b/c:x.y-z_1", Reference("registry:5000", "a/b/c", "x.y-z_1")),
    ("docker://kubevirt/fedora-cloud-container-disk-demo",
     Reference("docker.io", "kubevirt/fedora-cloud-container-disk-demo", "latest")),
    ("docker://busybox:1.36", Reference("docker.io", "library/busybox", "1.36")),
    (f"docker://r.example/x@{DIGEST}", Reference("r.example", "x", None, DIGEST)),
    (f"docker://r.example:443/x:v1@{DIGEST}", Reference("r.example:443", "x", None, DIGEST)),  # the digest wins
    ("  docker://r.example/a__b.c-d  ", Reference("r.example", "a__b.c-d", "latest")),
    ("docker://[::1]:5000/disk:1", Reference("[::1]:5000", "disk", "1")),
])
def test_reference_parsing(url: str, expected: Reference) -> None:
    assert parse(url) == expected


def test_reference_text_and_api_host() -> None:
    ref = parse("docker://fedora")
    assert str(ref) == "docker.io/library/fedora:latest"
    assert ref.api_host == "registry-1.docker.io" and ref.manifest_reference == "latest"
    ref = parse(f"docker://127.0.0.1:5000/d@{DIGEST}")
    assert str(ref) == f"127.0.0.1:5000/d@{DIGEST}"
    assert ref.api_host == "127.0.0.1:5000" and ref.manifest_reference == DIGEST


@pytest.mark.parametrize(("url", "message"), [
    ("127.0.0.1:5000/disk:v1", "expected docker://"),
    ("http://127.0.0.1:5000/disk", "expected docker://"),
    ("docker://", "no image named"),
    ("docker://r.example/Disk:v1", "malformed repository component 'Disk' (repository names are lowercase)"),
    ("docker://r.example/a//b", "malformed repository component ''"),
    ("docker://r.example/disk:v1?x", "malformed tag 'v1?x'"),
    ("docker://r.example/disk@sha256", "malformed digest 'sha256'"),
    ("docker://r_x.example/disk", "malformed registry host 'r_x.example'"),
    ("docker://r.example/" + "a" * 300, "longer than 255"),
    ("oci-archive:///tmp/disk.tar", "oci-archive images are not supported"),
])
def test_bad_references_are_permanent_and_say_why(url: str, message: str) -> None:
    with pytest.raises(PermanentError) as err:
        parse(url)
    assert message in str(err.value)
    assert str(err.value).startswith(f'Invalid image name "{url.strip()}"')


def test_from_env_reads_upstreams_variables() -> None:
    src = from_env({"IMPORTER_ENDPOINT": "docker://127.0.0.1:1/a:b", "IMPORTER_ACCESS_KEY_ID": "u",
                    "IMPORTER_SECRET_KEY": "p", "IMPORTER_REGISTRY_IMAGE_ARCHITECTURE": "arm64"}, [None], True)
    assert src.name == "docker://127.0.0.1:1/a:b" and src.ranged() is None
    assert src.architecture == "arm64" and src.client.insecure
    assert src.client.credentials is not None and src.client.credentials.basic() == "Basic dTpw"
    # Upstream uses credentials only when both halves are given; the node's architecture is the default.
    src = from_env({"IMPORTER_ENDPOINT": "docker://127.0.0.1:1/a:b", "IMPORTER_ACCESS_KEY_ID": "u"}, [None], False)
    assert src.client.credentials is None and src.architecture == mf.node_architecture()


# --- auth challenges


def test_bearer_challenge_with_commas_inside_quotes() -> None:
    header = ('Bearer realm="https://auth.example/token",service="registry.example",'
              'scope="repository:a/b:pull,push"')
    assert parse_challenges(header) == [Challenge("bearer", {
        "realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull,push"})]


def test_several_challenges_case_and_escapes() -> None:
    header = 'Basic realm="Registry \\"R\\"", charset=UTF-8, BEARER Realm=https://t.example/tok , error="invalid_token"'
    assert parse_challenges(header) == [
        Challenge("basic", {"realm": 'Registry "R"', "charset": "UTF-8"}),
        Challenge("bearer", {"realm": "https://t.example/tok", "error": "invalid_token"}),
    ]


@pytest.mark.parametrize("header", ["", "   ", ",,", "=", 'Basic', "Negotiate abc=="])
def test_odd_challenges_do_not_hang_or_raise(header: str) -> None:
    challenges = parse_challenges(header)
    assert all(c.scheme for c in challenges)


def test_token_url_takes_service_and_scopes_from_the_challenge() -> None:
    url = token_url(Challenge("bearer", {"realm": "https://t.example/token?x=1", "service": "reg",
                                         "scope": "repository:a:pull repository:b:pull"}), "repository:c:pull")
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "t.example", "/token")
    assert urllib.parse.parse_qs(parts.query) == {"x": ["1"], "service": ["reg"],
                                                  "scope": ["repository:a:pull", "repository:b:pull"]}
    url = token_url(Challenge("bearer", {"realm": "http://t.example/token"}), "repository:c:pull")
    assert url == "http://t.example/token?scope=repository%3Ac%3Apull"
    with pytest.raises(PermanentError, match="no usable token service"):
        token_url(Challenge("bearer", {"realm": "file:///etc/passwd"}), "repository:c:pull")


def test_token_answers() -> None:
    assert token_from_answer(b'{"token": "t1", "access_token": "t2"}', "r") == "t1"
    assert token_from_answer(b'{"access_token": "t2"}', "r") == "t2"
    with pytest.raises(PermanentError, match="answered without a token"):
        token_from_answer(b'{"expires_in": 60}', "r")
    with pytest.raises(PermanentError, match="not JSON"):
        token_from_answer(b"<html>", "r")


# --- manifests


def _doc(obj: object) -> bytes:
    return json.dumps(obj).encode()


def _desc(digest: str = DIGEST, size: int = 10, **extra: object) -> dict[str, object]:
    return {"mediaType": mf.OCI_MANIFEST, "digest": digest, "size": size, **extra}


def test_manifest_parsing_checks_digest_and_shape() -> None:
    body = _doc({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST, "config": _desc(),
                 "layers": [_desc(size=5), _desc(size=7)]})
    m = mf.parse(body, "", "img")
    assert m.media_type == mf.DOCKER_MANIFEST and not m.is_index
    assert [d.size for d in m.layers] == [5, 7] and m.digest == mf.digest_of(body)
    assert mf.parse(body, "", "img", m.digest) == m
    with pytest.raises(PermanentError, match="does not match its digest"):
        mf.parse(body, "", "img", DIGEST)
    # An OCI manifest without mediaType, served as plain JSON: its fields tell.
    assert mf.parse(_doc({"schemaVersion": 2, "layers": []}), "application/json", "img").media_type == mf.OCI_MANIFEST
    assert mf.parse(_doc({"schemaVersion": 2, "manifests": []}), "", "img").is_index


@pytest.mark.parametrize(("doc", "message"), [
    ({"schemaVersion": 1, "fsLayers": []}, "Docker schema 1 manifest, which is not supported"),
    ({"mediaType": mf.OCI_MANIFEST, "layers": [_desc(digest="md5:" + "0" * 32)]}, "only sha256, sha384, sha512"),
    ({"mediaType": mf.OCI_MANIFEST, "layers": [_desc(digest="sha256:xyz")]}, "malformed digest"),
    ({"mediaType": mf.OCI_MANIFEST, "layers": [_desc(size=-1)]}, "has no valid size"),
    ({"mediaType": mf.OCI_MANIFEST, "layers": "x"}, "has no layers list"),
    ({"mediaType": "application/vnd.example+json"}, "unsupported type application/vnd.example+json"),
    ([1, 2], "not a JSON object"),
])
def test_bad_manifests_are_permanent(doc: object, message: str) -> None:
    with pytest.raises(PermanentError, match=re.escape(message)):
        mf.parse(_doc(doc), "", "img")


def _index(*platforms: dict[str, str], attestation: bool = False) -> mf.Manifest:
    entries = [_desc(digest=f"sha256:{i:064x}", platform=p) for i, p in enumerate(platforms)]
    if attestation:
        entries.append(_desc(digest="sha256:" + "f" * 64, platform={"os": "unknown", "architecture": "unknown"},
                             annotations={"vnd.docker.reference.type": "attestation-manifest"}))
    return mf.parse(_doc({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}), "", "img")


def test_platform_choice() -> None:
    index = _index({"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm64", "variant": "v8"},
                   {"os": "linux", "architecture": "arm", "variant": "v6"},
                   {"os": "linux", "architecture": "arm", "variant": "v7"}, {"os": "windows", "architecture": "arm64"},
                   attestation=True)
    digest = {i: f"sha256:{i:064x}" for i in range(5)}
    assert mf.choose(index, "amd64", "img").digest == digest[0]
    assert mf.choose(index, "x86_64", "img").digest == digest[0]  # kernel names are understood
    assert mf.choose(index, "arm64", "img").digest == digest[1]
    assert mf.choose(index, "arm64/v8", "img").digest == digest[1]
    assert mf.choose(index, "arm/v7", "img").digest == digest[3]
    assert mf.choose(index, "arm", "img").digest == digest[2]
    with pytest.raises(PermanentError) as err:
        mf.choose(index, "s390x", "img")
    assert str(err.value) == ("image img has no linux/s390x manifest; its index lists linux/amd64, linux/arm64/v8, "
                              "linux/arm/v6, linux/arm/v7, windows/arm64")
    with pytest.raises(PermanentError, match="no linux/arm/v5 manifest"):
        mf.choose(index, "arm/v5", "img")
    single = mf.parse(_doc({"mediaType": mf.DOCKER_LIST, "manifests": [_desc()]}), "", "img")
    assert mf.choose(single, "s390x", "img").digest == DIGEST  # nothing to choose between


# --- layers: real tars, compressed as registries hold them

Spec = dict[str, "bytes | str"]  # name -> content, "dir", "symlink:<target>", "hardlink:<target>"


def build_tar(entries: Spec, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str):
                kind, _, target = content.partition(":")
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = target
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def compress(data: bytes, how: str) -> bytes:
    if how == "gz":
        return gzip.compress(data, 1)
    if how == "zst":
        return zstandard.ZstdCompressor().compress(data)
    return data


class Layers:
    """Layer blobs in a directory, opened as files (what a registry would stream)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.descs: list[mf.Descriptor] = []
        self.opened: list[str] = []

    def add(self, entries: Spec | bytes, how: str = "gz", fmt: int = tarfile.PAX_FORMAT) -> mf.Descriptor:
        blob = compress(entries if isinstance(entries, bytes) else build_tar(entries, fmt), how)
        digest = mf.digest_of(blob)
        (self.root / digest.replace(":", "_")).write_bytes(blob)
        desc = mf.Descriptor(mf.OCI_MANIFEST, digest, len(blob))
        self.descs.append(desc)
        return desc

    def open(self, desc: mf.Descriptor, what: str) -> RawBlob:
        self.opened.append(desc.digest)
        return open(self.root / desc.digest.replace(":", "_"), "rb")

    def stream(self) -> DiskStream:
        return DiskStream(self.descs, self.open, "docker://r.example/img:v1")

    def read_disk(self) -> bytes:
        s = self.stream()
        out = bytearray()
        while chunk := s.read(100_000):
            out += chunk
        assert s.read(10) == b""
        s.close()
        return bytes(out)


@pytest.fixture
def layers(tmp_path: Path) -> Layers:
    return Layers(tmp_path)


DISK = os.urandom(300_000) + bytes(1 << 20) + b"tail"


@pytest.mark.parametrize("how", ["gz", "zst", "plain"])
def test_one_layer_disk_with_progress_counts(layers: Layers, how: str) -> None:
    desc = layers.add({"disk": "dir", "disk/disk.img": DISK}, how)
    s = layers.stream()
    assert (s.length, s.count) == (desc.size, 0)
    got = bytearray()
    while chunk := s.read(1 << 16):
        got += chunk
        assert 0 < s.count <= desc.size
    assert bytes(got) == DISK and (s.count, s.length) == (desc.size, desc.size)


def test_a_later_layer_replaces_the_disk_and_lower_layers_are_not_read(layers: Layers) -> None:
    old = layers.add({"disk/old.img": b"old" * 1000})
    layers.add({"etc/motd": b"hi", "disk/.wh.old.img": b"", "disk/new.img": DISK})
    assert layers.read_disk() == DISK
    assert old.digest not in layers.opened
    # Without the whiteout the later file still wins: the image is read top down, as a container sees it.
    layers.descs = [old, layers.add({"disk/new.img": b"new"})]
    assert layers.read_disk() == b"new"


def test_the_disk_may_sit_below_layers_without_one(layers: Layers) -> None:
    layers.add({"./disk/": "dir", "./disk/fedora.qcow2": DISK})
    top = layers.add({"usr/share/doc/x": b"x" * 5000, "disk/": "dir"})
    s = layers.stream()
    assert s.count == top.size  # the top layer was read through (and verified) before the disk's layer
    assert s.length == top.size + layers.descs[0].size
    s.close()
    assert layers.read_disk() == DISK


@pytest.mark.parametrize(("upper", "why"), [
    ({"disk/.wh.a.img": b""}, "whiteout of the file"),
    ({".wh.disk": b""}, "whiteout of the directory"),
    ({"disk/.wh..wh..opq": b"", "disk/": "dir"}, "opaque directory"),
    ({"disk": b"not a directory"}, "a file replacing the directory"),
    ({"disk/a.img/": "dir"}, "a directory replacing the file"),
])
def test_hidden_disks_are_not_found(layers: Layers, upper: Spec, why: str) -> None:
    layers.add({"disk/a.img": DISK})
    layers.add(upper)
    with pytest.raises(PermanentError) as err:
        layers.stream()
    assert str(err.value) == ("no disk image found under /disk in docker://r.example/img:v1 (Failed to find VM disk "
                              "image file in the container image)"), why


def test_opaque_directory_keeps_its_own_layers_disk(layers: Layers) -> None:
    layers.add({"disk/a.img": b"lower"})
    layers.add({"disk/.wh..wh..opq": b"", "disk/b.img": b"upper"})
    assert layers.read_disk() == b"upper"


@pytest.mark.parametrize("entries", [{}, {"etc/hosts": b"x", "disk/": "dir"}, {"diskette/x.img": b"x"}])
def test_no_disk(layers: Layers, entries: Spec) -> None:
    layers.add(entries)
    with pytest.raises(PermanentError, match="no disk image found under /disk"):
        layers.stream()


def test_empty_blob_and_no_layers(layers: Layers) -> None:
    layers.add(b"", "plain")
    with pytest.raises(PermanentError, match="no disk image found"):
        layers.stream()
    layers.descs = []
    with pytest.raises(PermanentError, match="no disk image found"):
        layers.stream()


def test_two_files_in_disk_dir_are_refused_after_the_first(layers: Layers) -> None:
    layers.add({"disk/a.img": b"a" * 10, "disk/b.img": b"b" * 10})
    s = layers.stream()
    assert s.read(100) == b"a" * 10
    with pytest.raises(PermanentError) as err:
        s.read(100)
    assert str(err.value) == ("docker://r.example/img:v1 has more than one file under /disk (disk/a.img, disk/b.img); "
                              "a containerDisk holds exactly one")


def test_a_second_file_hidden_from_above_does_not_count(layers: Layers) -> None:
    layers.add({"disk/a.img": b"a", "disk/b.img": b"b"})
    layers.add({"disk/.wh.b.img": b""})
    assert layers.read_disk() == b"a"


@pytest.mark.parametrize(("content", "kind"), [("symlink:../x.img", "symbolic link"), ("hardlink:x.img", "hard link")])
def test_links_are_refused(layers: Layers, content: str, kind: str) -> None:
    layers.add({"x.img": b"x", "disk/disk.img": content})
    with pytest.raises(PermanentError, match=f"disk/disk.img in docker://r.example/img:v1 is a {kind}"):
        layers.stream()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_long_names_in_every_tar_dialect(layers: Layers, fmt: int) -> None:
    long = "disk/" + "d" * 60 + "/" + "n" * 80 + ".img"  # over 100 characters: ustar splits it into prefix and name
    entries: Spec = {long: DISK}
    if fmt != tarfile.USTAR_FORMAT:  # GNU long-name records and PAX paths, for a name ustar cannot hold
        entries = {"x" * 300: b"sibling", **entries}
    layers.add(entries, fmt=fmt)
    assert layers.read_disk() == DISK


def test_pax_non_ascii_name(layers: Layers) -> None:
    layers.add({"disk/dïsk-é.img": b"data"})
    assert layers.read_disk() == b"data"


def test_digest_mismatch_is_permanent(layers: Layers) -> None:
    desc = layers.add({"disk/disk.img": DISK})
    wrong = mf.Descriptor(desc.media_type, "sha256:" + "0" * 64, desc.size)
    (layers.root / wrong.digest.replace(":", "_")).write_bytes((layers.root / desc.digest.replace(":", "_"))
                                                                .read_bytes())
    layers.descs = [wrong]
    s = layers.stream()
    with pytest.raises(PermanentError) as err:
        while s.read(1 << 20):
            pass
    assert str(err.value) == (f"layer 1/1 ({wrong.digest}) of docker://r.example/img:v1 does not match its digest: "
                              f"expected {wrong.digest}, got {desc.digest}")


def test_short_blob_is_transient_long_blob_permanent(layers: Layers) -> None:
    desc = layers.add({"disk/disk.img": DISK})
    layers.descs = [mf.Descriptor(desc.media_type, desc.digest, desc.size + 10)]
    with pytest.raises(TransientError, match=f"the connection closed after {desc.size} of {desc.size + 10} bytes"):
        layers.read_disk()
    layers.descs = [mf.Descriptor(desc.media_type, desc.digest, desc.size - 10)]
    with pytest.raises(PermanentError, match=f"is larger than the {desc.size - 10} bytes its manifest says"):
        layers.read_disk()


def test_corrupt_tar_is_permanent(layers: Layers) -> None:
    tar = bytearray(build_tar({"disk/disk.img": b"x" * 2000}))
    tar[148:156] = b"0000000\0"  # a wrong header checksum
    layers.add(bytes(tar), "plain")
    with pytest.raises(PermanentError, match="is not a valid tar archive"):
        layers.stream()
    layers.descs = []
    layers.add(build_tar({"disk/disk.img": b"x" * 2000})[:1024], "plain")  # cut inside the data
    with pytest.raises(PermanentError, match="ends inside a member's data"):
        layers.read_disk()


# --- the tar reader and the whiteout book-keeping on their own


def test_tar_stream_skips_unread_data_and_sees_every_member() -> None:
    data = build_tar({"a": b"1" * 700, "d": "dir", "l": "symlink:a", "b": b"2" * 3, "c": b""})
    tar = TarStream(io.BytesIO(data), "t")
    names = []
    while (e := tar.next()) is not None:
        names.append((e.name, e.kind(), e.size))
        if e.name == "b":
            assert tar.read(-1) == b"222" and tar.read(5) == b""
    assert names == [("a", "regular file", 700), ("d", "directory", 0), ("l", "symbolic link", 0),
                     ("b", "regular file", 3), ("c", "regular file", 0)]
    assert tar.next() is None and tar.ended


def test_clean_names_and_upper_rules() -> None:
    assert clean("./disk//a.img") == "disk/a.img" and clean("/disk/") == "disk" and clean("./") == ""
    upper = Upper()
    assert upper.note("disk/.wh.a.img", False) and upper.note("etc/.wh.passwd", False)
    assert not upper.note("disk/sub", True) and not upper.note("usr/bin/ls", False)
    assert upper.removed == {"disk/a.img"} and upper.present == {"disk/sub"}  # only /disk is kept
    assert upper.hides("disk/a.img") and upper.hides("disk/sub") and not upper.hides("disk/b.img")
    upper.note("disk/sub/.wh..wh..opq", False)
    assert upper.hides("disk/sub/x") and not upper.hides("disk/subx")


def test_blob_reader_hashes_what_it_passes(tmp_path: Path) -> None:
    from pycdi.datapath.sources.registry.disk import BlobReader

    body = os.urandom(5000)
    (tmp_path / "b").write_bytes(body)
    desc = mf.Descriptor("x", "sha256:" + hashlib.sha256(body).hexdigest(), len(body))
    with open(tmp_path / "b", "rb") as raw:
        reader = BlobReader(raw, desc, "blob")
        assert reader.read(100) == body[:100]
        reader.finish()
        assert reader.count == len(body)
