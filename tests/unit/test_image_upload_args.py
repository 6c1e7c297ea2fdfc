"""`pycdi image-upload` without a cluster: how arguments are read, proxy paths, and the plain progress lines."""

from __future__ import annotations

import io

import pytest

from pycdi.cli.progress import ByteProgress
from pycdi.cli.uploadhttp import endpoint
from pycdi.cli.uploadopts import Flags, UsageError, parse_args


def test_current_and_deprecated_forms() -> None:
    o = parse_args(("DV", "disk"), Flags(image_path="a.img", size="1Gi"))
    assert (o.name, o.create_pvc, o.size, o.archive, o.volume_mode) == ("disk", False, "1Gi", False, "")
    o = parse_args((), Flags(pvc_name="p", pvc_size="2Gi", image_path="a.img", block_volume=True))
    # virtctl drops --block-volume in this form; it is honoured here.
    assert (o.name, o.create_pvc, o.size, o.volume_mode) == ("p", True, "2Gi", "block")
    o = parse_args((), Flags(dv_name="d", archive_path="a.tar"))
    assert (o.name, o.create_pvc, o.archive, o.image_path) == ("d", False, True, "a.tar")
    assert parse_args(("pvc", "x"), Flags(image_path="i", size="1Gi", pvc_size="1Gi")).size == "1Gi"


def test_the_deprecated_form_still_needs_a_path() -> None:
    with pytest.raises(UsageError, match="^either image-path or archive-path must be provided$"):
        parse_args((), Flags(pvc_name="p"))
    with pytest.raises(UsageError, match="^cannot use --pvc-name and --dv-name together$"):
        parse_args((), Flags(pvc_name="p", dv_name="d", image_path="i"))


def test_endpoint_joins_the_path_once() -> None:
    assert endpoint("https://h:1", "/v1beta1/upload") == "https://h:1/v1beta1/upload"
    assert endpoint("https://h/proxy/", "/v1beta1/upload-async") == "https://h/proxy/v1beta1/upload-async"
    assert endpoint("https://h/v1beta1/upload", "/v1beta1/upload") == "https://h/v1beta1/upload"


def test_plain_progress_lines() -> None:
    out = io.StringIO()
    progress = ByteProgress(3 << 20, out, terminal=False, line_interval=0)
    progress.update(1 << 20)
    progress.update(2 << 20)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("1.00 MiB / 3.00 MiB (33.3%), ") and lines[0].endswith(" left")
    assert lines[-1].startswith("3.00 MiB / 3.00 MiB (100.0%), ") and "iB/s, " in lines[-1]
