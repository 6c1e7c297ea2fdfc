"""qemu-img: inspect (under limits), validate, convert to raw, resize, create blank images."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from . import exec as tools
from . import sparse
from .errors import PermanentError

QEMU_IMG = "qemu-img"
#: The formats an import accepts (qemu calls vhd "vpc"); anything else qemu-img detects is refused.
SUPPORTED_FORMATS = frozenset({"raw", "qcow2", "vmdk", "vdi", "vpc", "vhdx"})

_CONVERT_PREALLOCATION: tuple[tuple[str, ...], ...] = (
    ("-o", "preallocation=falloc"),
    ("-o", "preallocation=full"),
    ("-S", "0"),
)
_RESIZE_PREALLOCATION: tuple[tuple[str, ...], ...] = (("--preallocation=falloc",), ("--preallocation=full",))


class LargerPVCRequired(PermanentError):
    """The image's virtual size does not fit the target."""


@dataclass(frozen=True)
class ImageInfo:
    """What `qemu-img info --output=json` says about an image."""

    format: str
    virtual_size: int
    actual_size: int
    backing_filename: str | None
    data_file: str | None

    @classmethod
    def from_json(cls, text: str, image: str) -> ImageInfo:
        try:
            raw = json.loads(text)
            fmt = str(raw["format"])
            virtual = int(raw["virtual-size"])
        except (ValueError, KeyError, TypeError) as err:
            raise PermanentError(f"Invalid json for image {image}") from err
        specific = raw.get("format-specific") or {}
        data = specific.get("data") if isinstance(specific, dict) else None
        data_file = data.get("data-file") if isinstance(data, dict) else None
        backing = raw.get("backing-filename") or raw.get("full-backing-filename")
        return cls(
            format=fmt,
            virtual_size=virtual,
            actual_size=int(raw.get("actual-size") or 0),
            backing_filename=str(backing) if backing else None,
            data_file=str(data_file) if data_file else None,
        )


def info(image: str, *, fmt: str | None = None, timeout: float | None = tools.INFO_TIMEOUT_SECONDS) -> ImageInfo:
    """Inspect a local path or an `nbd+unix://` URI, with address-space, CPU and wall-clock limits.

    `timeout=None` for an image still downloading (nbdspool): its reads wait for the download, which has its
    own stall limit; the CPU limit still holds."""
    argv = [QEMU_IMG, "info", "--output=json"]
    if fmt:
        argv += ["-f", fmt]
    argv.append(image)
    try:
        out = tools.run(argv, limits=tools.INFO_LIMITS, timeout=timeout)
    except tools.CommandError as err:
        # Killed by RLIMIT_CPU/RLIMIT_AS or refused outright: the image is what is wrong.
        raise PermanentError(f"Unable to inspect image {image}: {err}") from err
    return ImageInfo.from_json(out, image)


def validate(image_info: ImageInfo, available: int, image: str) -> None:
    """Refuse unsupported formats, backing files, external data files, and images larger than `available`."""
    if image_info.format not in SUPPORTED_FORMATS:
        raise PermanentError(f"Invalid format {image_info.format} for image {image}")
    if image_info.backing_filename:
        # Upstream accepts a backing file that happens to exist locally; a downloaded image must never
        # make us read a file of the worker's, so any backing file is refused.
        raise PermanentError(f"Image {image} is invalid because it has backing file {image_info.backing_filename}")
    if image_info.data_file:
        raise PermanentError(f"Image {image} is invalid because it has an external data file {image_info.data_file}")
    check_fits(image_info.virtual_size, available)


def check_consistency(
    image: str, fmt: str, name: str, *, timeout: float | None = tools.INFO_TIMEOUT_SECONDS
) -> None:
    """`qemu-img check` for qcow2: a truncated or corrupt image would otherwise convert with zeros for the
    missing clusters and "succeed". Leaked clusters (exit 3) are harmless; corruptions (exit 2) are refused."""
    if fmt != "qcow2":
        return
    argv = [QEMU_IMG, "check", "--output=json", "-f", fmt, image]
    try:
        tools.run(argv, limits=tools.INFO_LIMITS, timeout=timeout)
    except tools.CommandError as err:
        if err.returncode == 3:
            return
        first = err.stderr.splitlines()[0] if err.stderr else f"exit status {err.returncode}"
        raise PermanentError(f"Image {name} is corrupt or truncated: {first}") from err


@contextmanager
def checking(
    image: str, fmt: str, name: str, *, timeout: float | None = tools.INFO_TIMEOUT_SECONDS
) -> Iterator[None]:
    """`check_consistency` in a thread while the block runs (the convert): the check reads only metadata and
    finishes within the convert's time instead of before it. Its verdict wins over the block's own error
    (a truncated image makes qemu-img convert fail too, with a less telling message)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            check_consistency(image, fmt, name, timeout=timeout)
        except BaseException as err:
            failure.append(err)

    thread = threading.Thread(target=run, name="qemu-img-check", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        thread.join()
        if failure:
            raise failure[0] from None
        raise
    thread.join()
    if failure:
        raise failure[0]


def check_fits(virtual_size: int, available: int) -> None:
    """Upstream's size check and message (both numbers in bytes)."""
    if virtual_size > available:
        raise LargerPVCRequired(
            f"virtual image size {virtual_size} is larger than the reported available storage {available}. "
            "A larger PVC is required"
        )


def cache_mode(target: str, try_none: bool) -> str:
    """`none` (O_DIRECT) where the target supports it and it pays (a local disk filesystem, see
    `sparse.direct_writes_suit`) or where asked for (upstream's cacheMode TryNone), else `writeback` (which
    flushes)."""
    if not try_none and not sparse.direct_writes_suit(target):
        return "writeback"
    exists = os.path.exists(target)
    path = target if exists else os.path.join(os.path.dirname(target) or ".", ".pycdi-odirect-probe")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return "writeback"
    os.close(fd)
    if not exists:
        os.unlink(path)
    return "none"


def _with_preallocation(
    argv: Sequence[str], methods: Sequence[Sequence[str]], run: Callable[[list[str]], None]
) -> None:
    """Try each preallocation option in turn, moving on only when qemu-img says the mode is unsupported."""
    last: tools.CommandError | None = None
    for method in methods:
        try:
            run([argv[0], argv[1], *method, *argv[2:]])
            return
        except tools.CommandError as err:
            if "Unsupported preallocation mode" not in err.stderr:
                raise
            last = err
    assert last is not None
    raise last


class _WriteBehind:
    """Starts the writeback of qemu-img's output while it converts (on each progress report, in a thread).

    `-t writeback` ends with one flush of everything written: on a disk that is most of a fast import's time.
    Pushing pages out as they come overlaps that with the transfer, and the closing flush finds little left.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd = -1
        self._cond = threading.Condition()
        self._pending = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="qemu-img-writeback", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        with self._cond:
            self._pending = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                self._pending = False
            try:
                if self._fd < 0:
                    self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
                # DONTNEED starts writeback of the dirty pages (asynchronously) and drops the clean ones.
                os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except OSError:
                continue  # not created yet, or gone: only an optimisation

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        if self._fd >= 0:
            os.close(self._fd)


def convert(
    src: str,
    dst: str,
    *,
    src_format: str | None = None,
    progress: Callable[[float], None] | None = None,
    preallocate: bool = False,
    try_direct_io: bool = False,
    target_is_block: bool = False,
) -> None:
    """`qemu-img convert` to raw; `-t writeback`/`none` so the result is flushed (the default never fsyncs)."""
    mode = cache_mode(dst, try_direct_io)
    argv = [QEMU_IMG, "convert", "-t", mode, "-p", "-O", "raw"]
    if src_format:
        argv += ["-f", src_format]
    if target_is_block:
        # Write into the existing device instead of trying to create it.
        argv.append("-n")
    argv += [src, dst]
    report = progress or (lambda _v: None)

    def go(args: list[str]) -> None:
        if mode == "none":  # nothing waits in the page cache
            tools.run_with_progress([QEMU_IMG, *args[1:]], report)
            return
        behind = _WriteBehind(dst)

        def on_progress(value: float) -> None:
            report(value)
            behind.poke()

        try:
            tools.run_with_progress([QEMU_IMG, *args[1:]], on_progress)
        finally:
            behind.close()

    try:
        if preallocate and not target_is_block:
            _with_preallocation(argv, _CONVERT_PREALLOCATION, go)
        else:
            go(argv)
    except tools.CommandError as err:
        if not target_is_block and os.path.exists(dst):
            os.unlink(dst)
        raise PermanentError(f"could not convert image to raw: {err.stderr}") from err


def resize(image: str, size: int, *, preallocate: bool = False) -> None:
    """Grow a raw image to `size` bytes (never shrinks: callers check first)."""
    argv = [QEMU_IMG, "resize", "-f", "raw", image, str(size)]

    def go(args: list[str]) -> None:
        tools.run(args)

    try:
        if preallocate:
            _with_preallocation(argv, _RESIZE_PREALLOCATION, go)
        else:
            go(argv)
    except tools.CommandError as err:
        raise PermanentError(f"Error resizing image {image}: {err.stderr}") from err


def create_blank(path: str, size: int, *, preallocate: bool = False) -> None:
    """A raw image of `size` bytes (sparse unless preallocated), mode 0660 as upstream."""
    argv = [QEMU_IMG, "create", "-f", "raw", path, str(size)]
    if preallocate:
        argv += ["-o", "preallocation=falloc"]
    try:
        tools.run(argv)
    except tools.CommandError as err:
        if os.path.exists(path):
            os.unlink(path)
        raise PermanentError(f"could not create raw image with size {size} in {path}: {err.stderr}") from err
    os.chmod(path, 0o660)
