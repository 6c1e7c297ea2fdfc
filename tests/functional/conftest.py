"""Fixtures of the functional tests: real images, nginx and registry servers (tests/support/fixtures.py)."""

from tests.support.fixtures import fixture_pki, image_corpus, nginx_factory, registry_factory

__all__ = ["fixture_pki", "image_corpus", "nginx_factory", "registry_factory"]
