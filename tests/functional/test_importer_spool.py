"""`pycdi importer` on a slow link: one download into scratch, converted while it arrives (nbdspool), real nginx."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from pycdi.datapath.nbdspool import RangeFetcher
from pycdi.datapath.sources.http import HttpConfig
from tests.support.fixtures import NginxFactory
from tests.support.images import Corpus, sha256_file

DELAY = 0.005  # seconds per request: above the importer's limit for reading in place (NBDKIT_MAX_RTT)


def run_importer(tmp_path: Path, url: str, **extra: str) -> tuple[int, str, Path]:
    volume, scratch = tmp_path / "volume", tmp_path / "scratch"
    volume.mkdir(exist_ok=True)
    scratch.mkdir(exist_ok=True)
    mapping = {"/data": str(volume), "/scratch": str(scratch), "/dev/termination-log": str(tmp_path / "term")}
    env = {"PATH": os.environ["PATH"], "PYCDI_PATH_MAP": json.dumps(mapping), "IMPORTER_SOURCE": "http",
           "IMPORTER_ENDPOINT": url, "IMPORTER_IMAGE_SIZE": "128Mi", "IMPORTER_VOLUME_MODE": "Filesystem", **extra}
    done = subprocess.run([sys.executable, "-m", "pycdi", "importer"], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    return done.returncode, done.stderr, volume


def statuses(access_log: Path, name: str) -> list[str]:
    pattern = re.compile(rf'"GET /{re.escape(name)} HTTP/1\.1" (\d{{3}})')
    return [m.group(1) for line in access_log.read_text().splitlines() if (m := pattern.search(line))]


def test_slow_link_downloads_once_into_scratch_and_converts(tmp_path: Path, image_corpus: Corpus,
                                                             nginx_factory: NginxFactory) -> None:
    name = image_corpus.path("qcow2").name
    web = nginx_factory(image_corpus.root, delay=DELAY)
    code, log, volume = run_importer(tmp_path, web.url(name))
    assert code == 0, log
    assert "downloading to scratch" in log and "(scratch)" in log
    assert sha256_file(volume / "disk.img", image_corpus.virtual_size) == image_corpus.sha256_raw
    assert not any((tmp_path / "scratch").iterdir())
    # One whole-file GET; everything else is ranged (the round-trip probes, metadata ahead of the download).
    seen = statuses(web.access_log, name)
    assert seen.count("200") == 1 and set(seen) <= {"200", "206"}, seen


def test_slow_link_without_ranges_still_converts(tmp_path: Path, image_corpus: Corpus,
                                                 nginx_factory: NginxFactory) -> None:
    name = image_corpus.path("qcow2").name
    web = nginx_factory(image_corpus.root, delay=DELAY, ranges=False)
    code, log, volume = run_importer(tmp_path, web.url(name))
    assert code == 0, log
    assert "(scratch)" in log
    assert sha256_file(volume / "disk.img", image_corpus.virtual_size) == image_corpus.sha256_raw


def test_checksum_is_checked_before_the_import_succeeds(tmp_path: Path, image_corpus: Corpus,
                                                        nginx_factory: NginxFactory) -> None:
    path = image_corpus.path("qcow2")
    web = nginx_factory(image_corpus.root, delay=DELAY)
    good = f"sha256:{sha256_file(path)}"
    code, log, volume = run_importer(tmp_path, web.url(path.name), IMPORTER_CHECKSUM=good)
    assert code == 0 and "(scratch)" in log, log
    (volume / "disk.img").unlink()
    code, log, volume = run_importer(tmp_path, web.url(path.name), IMPORTER_CHECKSUM="sha256:" + "0" * 64)
    assert code == 1 and "checksum mismatch" in log, log
    assert not (volume / "disk.img").exists() and not any((tmp_path / "scratch").iterdir())


def test_range_fetcher_reads_exact_bytes_or_gives_up_once(image_corpus: Corpus, nginx_factory: NginxFactory) -> None:
    path = image_corpus.path("qcow2")
    data = path.read_bytes()
    web = nginx_factory(image_corpus.root)
    url = web.flaky_url(path.name, failures=0)  # counts the requests as they arrive
    fetch = RangeFetcher(HttpConfig(url=url))
    assert fetch(0, 512) == data[:512]
    assert fetch(len(data) - 65536, 65536) == data[-65536:]
    assert fetch(0, 512) == data[:512]
    assert web.flaky_hits(url) == 2  # the repeat was answered from what was kept
    fetch.close()
    plain = nginx_factory(image_corpus.root, ranges=False)
    url = plain.flaky_url(path.name, failures=0)
    fetch = RangeFetcher(HttpConfig(url=url))
    assert fetch(4096, 512) is None  # a 200 with the whole file: no ranges here
    assert fetch(0, 512) is None
    assert plain.flaky_hits(url) == 1  # the second call did not ask again
