"""Session and per-test fixtures for the import tests: the image corpus, nginx servers, registries, a CA."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from pycdi.cluster.apiserver.pki import PKI, ensure_pki
from tests.support.images import Corpus, corpus
from tests.support.nginx import Credentials, NginxServer, nginx_server
from tests.support.registry import RegistryServer, registry_server

NginxFactory = Callable[..., NginxServer]
RegistryFactory = Callable[..., RegistryServer]


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory all pytest-xdist workers of this session share (the corpus is built once for all)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def image_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The default corpus (64 MiB ext4, every format); each file is built the first time a test asks for it."""
    return corpus(shared_root(tmp_path_factory) / "image-corpus")


@pytest.fixture(scope="session")
def fixture_pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """A CA for the test servers' certificates (its PEM is what a certConfigMap carries)."""
    return ensure_pki(tmp_path_factory.mktemp("fixture-pki"))


@pytest.fixture
def nginx_factory(tmp_path_factory: pytest.TempPathFactory, fixture_pki: PKI) -> Iterator[NginxFactory]:
    """start(root, tls=..., auth=Credentials(...), ranges=..., delay=...) -> a running nginx, stopped after
    the test. TLS certificates come from `fixture_pki`."""
    with ExitStack() as stack:
        def start(root: Path, **kw: object) -> NginxServer:
            workdir = tmp_path_factory.mktemp("nginx")
            kw.setdefault("pki_dir", fixture_pki.directory)
            return stack.enter_context(nginx_server(workdir, root, **kw))  # type: ignore[arg-type]
        yield start


@pytest.fixture
def registry_factory(tmp_path_factory: pytest.TempPathFactory, fixture_pki: PKI) -> Iterator[RegistryFactory]:
    """start(tls=..., auth=Credentials(...)) -> a running docker-registry, stopped after the test."""
    with ExitStack() as stack:
        def start(**kw: object) -> RegistryServer:
            workdir = tmp_path_factory.mktemp("registry")
            kw.setdefault("pki_dir", fixture_pki.directory)
            return stack.enter_context(registry_server(workdir, **kw))  # type: ignore[arg-type]
        yield start


__all__ = ["Credentials", "NginxFactory", "RegistryFactory", "fixture_pki", "image_corpus", "nginx_factory",
           "registry_factory", "shared_root"]
