"""A real docker-registry (distribution v2) on 127.0.0.1, and containerDisk images pushed into it."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import jwt
import yaml
import zstandard
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.nginx import Credentials, free_port, serving_cert_files

REGISTRY = "/usr/bin/docker-registry"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
#: Layer media types by (docker manifest?, compression).
LAYER_TYPES = {
    (False, "gz"): OCI_LAYER, (False, "zst"): "application/vnd.oci.image.layer.v1.tar+zstd",
    (False, None): "application/vnd.oci.image.layer.v1.tar",
    (True, "gz"): DOCKER_LAYER, (True, None): "application/vnd.docker.image.rootfs.diff.tar",
}
TOKEN_SERVICE = "pycdi-test-registry"
TOKEN_ISSUER = "pycdi-test-token-issuer"
CONTAINER_DISK_UID = 107  # qemu's uid in KubeVirt's containerDisk images


@dataclass(frozen=True)
class RegistryServer:
    workdir: Path
    port: int
    scheme: str
    pid: int
    ca_pem: bytes | None = None
    ca_path: Path | None = None
    credentials: Credentials | None = None

    @property
    def host(self) -> str:
        """host:port, as it appears in image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cadata=self.ca_pem.decode()) if self.ca_pem else None

    def request(self, method: str, path: str, data: bytes | BinaryIO | None = None,
                headers: dict[str, str] | None = None,
                auth: bool = True) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request to the registry API; (status, headers, body), errors included."""
        h = dict(headers or {})
        if auth and self.credentials:
            token = base64.b64encode(f"{self.credentials.username}:{self.credentials.password}".encode()).decode()
            h["Authorization"] = f"Basic {token}"
        req = urllib.request.Request(path if "://" in path else self.base_url + path, data=data, headers=h,
                                     method=method)
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=60) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()


@dataclass(frozen=True)
class ContainerDisk:
    """What push_container_disk put in the registry."""

    reference: str  # 127.0.0.1:PORT/repo:tag
    manifest_digest: str
    manifest_media_type: str
    layer_digest: str
    disk_path: str  # inside the image: disk/<name>

    @property
    def url(self) -> str:
        """The DataVolume's `source.registry.url`."""
        return f"docker://{self.reference}"


def bcrypt_htpasswd(path: Path, username: str, password: str) -> None:
    """The registry accepts only bcrypt entries; `htpasswd -B` (apache2-utils) makes them."""
    if shutil.which("htpasswd") is None:
        raise RuntimeError("htpasswd is not installed (apache2-utils; scripts/setup.sh installs it)")
    done = subprocess.run(["htpasswd", "-niB", username], input=password, capture_output=True, text=True,
                          check=True, timeout=30)
    path.write_text(done.stdout.strip() + "\n")


@contextmanager
def registry_server(tmp: Path, tls: bool = False, auth: Credentials | None = None,
                    pki_dir: Path | None = None, token: TokenServer | None = None) -> Iterator[RegistryServer]:
    """Run docker-registry with filesystem storage under `tmp` until the block ends.

    `auth`: htpasswd (basic) auth; `token`: Docker token auth, tokens issued by that running TokenServer."""
    if not Path(REGISTRY).exists():
        raise RuntimeError(f"{REGISTRY} is missing (docker-registry; scripts/setup.sh installs it)")
    tmp.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(tmp / "storage")}, "delete": {"enabled": True}},
    }
    http: dict[str, object] = {"secret": os.urandom(16).hex()}
    ca_pem = ca_path = None
    if tls:
        (cert, key), pki = serving_cert_files(tmp, pki_dir or tmp / "pki", "pycdi-test-registry")
        http["tls"] = {"certificate": str(cert), "key": str(key)}
        ca_pem, ca_path = pki.ca_cert_pem, pki.ca_cert_path
    if auth:
        bcrypt_htpasswd(tmp / "htpasswd", auth.username, auth.password)
        config["auth"] = {"htpasswd": {"realm": "pycdi-test-registry", "path": str(tmp / "htpasswd")}}
    if token:
        config["auth"] = {"token": {"realm": token.realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                                    "rootcertbundle": str(token.cert_path)}}
    # The registry reads REGISTRY_* variables over its file; ours must not be overridden by the caller's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    proc = None
    try:
        for _attempt in range(5):
            port = free_port()
            config["http"] = {**http, "addr": f"127.0.0.1:{port}"}
            (tmp / "config.yml").write_text(yaml.safe_dump(config))
            with open(tmp / "registry.log", "ab") as log:
                proc = subprocess.Popen([REGISTRY, "serve", str(tmp / "config.yml")], stdout=log, stderr=log,
                                        env=env)
            server = RegistryServer(tmp, port, "https" if tls else "http", proc.pid, ca_pem, ca_path,
                                    auth or (token.credentials if token else None))
            if _wait_ready(proc, server):
                break
            _stop(proc)
            if "address already in use" not in (tmp / "registry.log").read_text(errors="replace"):
                raise RuntimeError(f"docker-registry did not start: {(tmp / 'registry.log').read_text()[-2000:]}")
        else:
            raise RuntimeError("docker-registry found no free port in 5 attempts")
        yield server
    finally:
        if proc is not None:
            _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], server: RegistryServer) -> bool:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with suppress(OSError):
            status, _, _ = server.request("GET", "/v2/", auth=False)
            if status in (200, 401):
                return True
        time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


# --- containerDisk images


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def container_disk_layer(disk_path: Path, name: str, dest: Path) -> str:
    """Write to `dest` a gzipped layer holding disk/ and disk/<name>, owned by 107 as KubeVirt builds them;
    return the uncompressed tar's digest (the config's diff_id). Streams: disks may be large."""
    with gzip.GzipFile(dest, "wb", compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo("disk")
        d.type, d.mode, d.uid, d.gid = tarfile.DIRTYPE, 0o555, CONTAINER_DISK_UID, CONTAINER_DISK_UID
        tar.addfile(d)
        f = tarfile.TarInfo(f"disk/{name}")
        f.size, f.mode, f.uid, f.gid = disk_path.stat().st_size, 0o444, CONTAINER_DISK_UID, CONTAINER_DISK_UID
        with open(disk_path, "rb") as src:
            tar.addfile(f, src)
    h = hashlib.sha256()
    with gzip.open(dest, "rb") as raw:
        while chunk := raw.read(1 << 22):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def build_oci_layout(layout: Path, tag: str, disk_path: Path, name: str, docker: bool = False) -> tuple[str, str]:
    """An OCI image layout dir with one containerDisk image; returns (manifest digest, layer digest)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    partial = blobs / "layer.partial"
    diff_id = container_disk_layer(disk_path, name, partial)
    layer_digest, layer_size = _file_digest(partial), partial.stat().st_size
    partial.rename(blobs / layer_digest.removeprefix("sha256:"))
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "pycdi tests: containerDisk", "created": "2023-11-14T22:13:20Z"}],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": layer_digest,
                    "size": layer_size}],
    }, sort_keys=True).encode()
    for blob in (config, manifest):
        (blobs / _digest(blob).removeprefix("sha256:")).write_bytes(blob)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST, "digest": _digest(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return _digest(manifest), layer_digest


def push_container_disk(registry: RegistryServer, repo: str, tag: str, disk_path: Path, *,
                        docker: bool = False, method: str | None = None) -> ContainerDisk:
    """Push a containerDisk holding `disk_path` as disk/<its name> to `registry` as repo:tag.

    `method`: "skopeo" (skopeo copy from an OCI layout built here; the default when skopeo is installed) or
    "api" (the registry's HTTP API from Python: monolithic blob uploads, then the manifest). `docker`: a Docker
    v2 schema 2 manifest instead of an OCI one.
    """
    method = method or ("skopeo" if shutil.which("skopeo") else "api")
    work = registry.workdir / "push" / f"{repo.replace('/', '_')}-{tag}"
    shutil.rmtree(work, ignore_errors=True)
    layout = work / "layout"
    layout.mkdir(parents=True)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    if method == "skopeo":
        # skopeo's oci: transport reads OCI manifests only; it converts to Docker's format itself (--format).
        _, layer_digest = build_oci_layout(layout, tag, disk_path, disk_path.name, docker=False)
        manifest_digest = _push_skopeo(registry, layout, repo, tag, work, docker)
    elif method == "api":
        manifest_digest, layer_digest = build_oci_layout(layout, tag, disk_path, disk_path.name, docker)
        _push_api(registry, layout, repo, tag, manifest_digest, media_type)
    else:
        raise ValueError(f"unknown push method {method!r}")
    return ContainerDisk(f"{registry.host}/{repo}:{tag}", manifest_digest, media_type, layer_digest,
                         f"disk/{disk_path.name}")


def _push_skopeo(registry: RegistryServer, layout: Path, repo: str, tag: str, work: Path, docker: bool) -> str:
    """skopeo copy the layout to the registry; return the pushed manifest's digest."""
    args = ["skopeo", "--insecure-policy", "copy", "--quiet", "--digestfile", str(work / "digest")]
    args += ["--format", "v2s2"] if docker else ["--preserve-digests"]
    if registry.ca_pem:
        certs = work / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(registry.ca_pem)  # skopeo trusts every *.crt in the cert dir
        args += ["--dest-cert-dir", str(certs)]
    else:
        args += ["--dest-tls-verify=false"]  # plain HTTP: skopeo speaks it only to "insecure" registries
    if registry.credentials:
        args += ["--dest-creds", f"{registry.credentials.username}:{registry.credentials.password}"]
    else:
        args += ["--dest-no-creds"]
    args += [f"oci:{layout}:{tag}", f"docker://{registry.host}/{repo}:{tag}"]
    # HOME in the work dir: skopeo must not read or write the invoking user's auth files.
    env = {**os.environ, "HOME": str(work), "XDG_RUNTIME_DIR": str(work)}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"skopeo copy failed: {done.stderr.strip()}")
    return (work / "digest").read_text().strip()


def _upload_blob(registry: RegistryServer, repo: str, blob: Path, digest: str) -> None:
    """A monolithic upload (POST, then PUT with the digest), streamed from the file; skipped if present."""
    if registry.request("HEAD", f"/v2/{repo}/blobs/{digest}")[0] == 200:
        return
    status, headers, body = registry.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"")
    if status != 202:
        raise RuntimeError(f"starting a blob upload: {status} {body[:300]!r}")
    location = headers["Location"]
    if location.startswith("/"):
        location = registry.base_url + location
    sep = "&" if "?" in location else "?"
    with open(blob, "rb") as data:
        status, _, body = registry.request("PUT", f"{location}{sep}digest={digest}", data=data,
                                           headers={"Content-Type": "application/octet-stream",
                                                    "Content-Length": str(blob.stat().st_size)})
    if status != 201:
        raise RuntimeError(f"uploading {digest}: {status} {body[:300]!r}")


def _put_manifest(registry: RegistryServer, repo: str, reference: str, manifest: bytes, media_type: str) -> None:
    status, _, body = registry.request("PUT", f"/v2/{repo}/manifests/{reference}", data=manifest,
                                       headers={"Content-Type": media_type})
    if status != 201:
        raise RuntimeError(f"putting the manifest: {status} {body[:300]!r}")


def _push_api(registry: RegistryServer, layout: Path, repo: str, tag: str, manifest_digest: str,
              media_type: str) -> None:
    blobs = layout / "blobs" / "sha256"
    manifest = (blobs / manifest_digest.removeprefix("sha256:")).read_bytes()
    doc = json.loads(manifest)
    for desc in [doc["config"], *doc["layers"]]:
        digest = desc["digest"]
        _upload_blob(registry, repo, blobs / digest.removeprefix("sha256:"), digest)
    _put_manifest(registry, repo, tag, manifest, media_type)


# --- any image: several layers (compressed or not, whiteouts...), and multi-platform indexes


@dataclass(frozen=True)
class Layer:
    """A layer blob on disk and what a manifest and a config say about it."""

    path: Path
    digest: str
    size: int
    diff_id: str
    compression: str | None


class _LayerWriter:
    """Hashes the tar (diff_id) and the compressed blob (digest) while compressing: nothing held in memory."""

    def __init__(self, dest: Path, compression: str | None) -> None:
        self._f = open(dest, "wb")
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
        self._gz = zlib.compressobj(1, zlib.DEFLATED, 31) if compression == "gz" else None
        self._zst = zstandard.ZstdCompressor().compressobj() if compression == "zst" else None

    def _out(self, data: bytes) -> None:
        if data:
            self.blob.update(data)
            self.size += len(data)
            self._f.write(data)

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        self._out(self._gz.compress(data) if self._gz else self._zst.compress(data) if self._zst else bytes(data))
        return len(data)

    def close(self) -> None:
        self._out(self._gz.flush() if self._gz else self._zst.flush() if self._zst else b"")
        self._f.close()


LayerFiles = dict[str, "Path | bytes | None"]  # name in the image -> a file to stream, content, or None (a directory)


def make_layer(dest: Path, files: LayerFiles, compression: str | None = "gz") -> Layer:
    """Write a layer blob: a tar (owned by 107, as containerDisks are) of `files`, gzip/zstd compressed or not."""
    writer = _LayerWriter(dest, compression)
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.uid = info.gid = CONTAINER_DISK_UID
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o555
                tar.addfile(info)
            elif isinstance(content, Path):
                info.size, info.mode = content.stat().st_size, 0o444
                with open(content, "rb") as src:
                    tar.addfile(info, src)
            else:
                info.size, info.mode = len(content), 0o444
                tar.addfile(info, BytesReader(content))
    writer.close()
    return Layer(dest, "sha256:" + writer.blob.hexdigest(), writer.size, "sha256:" + writer.diff.hexdigest(),
                 compression)


class BytesReader:
    """The read() tarfile.addfile wants, over bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def read(self, size: int = -1) -> bytes:
        size = len(self._data) if size < 0 else size
        out, self._data = bytes(self._data[:size]), self._data[size:]
        return out


@dataclass(frozen=True)
class PushedImage:
    """An image manifest in the registry."""

    registry_host: str
    repo: str
    tag: str | None
    digest: str
    size: int
    media_type: str
    layers: list[Layer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The DataVolume's `source.registry.url`: by tag, else by digest."""
        ref = f":{self.tag}" if self.tag else f"@{self.digest}"
        return f"docker://{self.registry_host}/{self.repo}{ref}"


def push_image(registry: RegistryServer, repo: str, tag: str | None, layers: list[Layer], *, docker: bool = False,
               architecture: str = "amd64") -> PushedImage:
    """Upload the layers and a config, then put the manifest by tag (or by its digest when `tag` is None)."""
    config = json.dumps({
        "architecture": architecture, "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
    }, sort_keys=True).encode()
    work = registry.workdir / "push" / uuid.uuid4().hex
    work.mkdir(parents=True)
    (work / "config").write_bytes(config)
    _upload_blob(registry, repo, work / "config", _digest(config))
    for layer in layers:
        _upload_blob(registry, repo, layer.path, layer.digest)
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": _digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": LAYER_TYPES[(docker, layer.compression)], "digest": layer.digest,
                    "size": layer.size} for layer in layers],
    }, sort_keys=True).encode()
    _put_manifest(registry, repo, tag or _digest(manifest), manifest, media_type)
    return PushedImage(registry.host, repo, tag, _digest(manifest), len(manifest), media_type, list(layers))


def push_index(registry: RegistryServer, repo: str, tag: str, images: list[tuple[PushedImage, dict[str, str]]], *,
               docker: bool = False) -> PushedImage:
    """A multi-platform index (OCI) or manifest list (Docker) naming pushed images with their platforms."""
    media_type = DOCKER_LIST if docker else OCI_INDEX
    index = json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "manifests": [{"mediaType": image.media_type, "digest": image.digest, "size": image.size,
                       "platform": platform} for image, platform in images],
    }, sort_keys=True).encode()
    _put_manifest(registry, repo, tag, index, media_type)
    return PushedImage(registry.host, repo, tag, _digest(index), len(index), media_type)


def blob_path(registry: RegistryServer, digest: str) -> Path:
    """Where the registry's filesystem storage keeps a blob (tests corrupt it there)."""
    hexdigest = digest.removeprefix("sha256:")
    return registry.workdir / "storage/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


# --- a Docker token service (the `auth: token` of docker-registry), signing with its own test certificate


@dataclass
class TokenServer:
    """Issues registry tokens: full access to what is asked for with the right basic credentials, nothing for
    anonymous requests, 401 for wrong credentials. `requests` records (user or None, scopes) of each request."""

    port: int
    cert_path: Path
    credentials: Credentials
    key: ec.EllipticCurvePrivateKey
    cert_der: bytes
    requests: list[tuple[str | None, list[str]]] = field(default_factory=list)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def issue(self, user: str | None, scopes: list[str]) -> str:
        access = []
        for scope in scopes if user else []:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": TOKEN_ISSUER, "sub": user or "", "aud": TOKEN_SERVICE, "iat": now, "nbf": now - 5,
                  "exp": now + 300, "jti": uuid.uuid4().hex, "access": access}
        # x5c: the registry checks the signing certificate against its rootcertbundle (this same certificate).
        return jwt.encode(claims, self.key, algorithm="ES256",
                          headers={"x5c": [base64.b64encode(self.cert_der).decode()]})


class _TokenHandler(BaseHTTPRequestHandler):
    server: _TokenHTTPServer

    def do_GET(self) -> None:
        tokens = self.server.tokens
        parts = urllib.parse.urlsplit(self.path)
        if parts.path != "/token":
            self._answer(404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
            return
        scopes = urllib.parse.parse_qs(parts.query).get("scope", [])
        user = None
        header = self.headers.get("Authorization", "")
        if header:
            scheme, _, value = header.partition(" ")
            try:
                name, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                name = password = ""
            if scheme.lower() != "basic" or (name, password) != (tokens.credentials.username,
                                                                  tokens.credentials.password):
                tokens.requests.append(("<refused>", scopes))
                self._answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
                return
            user = name
        tokens.requests.append((user, scopes))
        token = tokens.issue(user, scopes)
        self._answer(200, {"token": token, "access_token": token, "expires_in": 300,
                           "issued_at": datetime.datetime.now(datetime.UTC).isoformat()})

    def _answer(self, status: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _TokenHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    tokens: TokenServer


def _signing_cert(workdir: Path) -> tuple[ec.EllipticCurvePrivateKey, bytes, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    path = workdir / "token-signer.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert.public_bytes(serialization.Encoding.DER), path


@contextmanager
def token_server(workdir: Path, credentials: Credentials) -> Iterator[TokenServer]:
    """A token service on 127.0.0.1 (a thread of this process) until the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    key, der, cert_path = _signing_cert(workdir)
    server = _TokenHTTPServer(("127.0.0.1", 0), _TokenHandler)
    tokens = TokenServer(int(server.server_address[1]), cert_path, credentials, key, der)
    server.tokens = tokens
    thread = threading.Thread(target=server.serve_forever, name="token-server", daemon=True)
    thread.start()
    try:
        yield tokens
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_TIMEOUT)
