"""`pycdi image-upload`'s arguments as virtctl reads them (parseArgs), with virtctl's error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

READ_ONLY_MANY = "ReadOnlyMany"
MSG_READ_ONLY = "cannot upload to a readonly volume, use either ReadWriteOnce or ReadWriteMany if supported"

#: Deprecated flags and what cobra prints when one is used (to stderr, the command goes on).
DEPRECATED = {
    "pvc-name": "specify the name as the second argument instead.",
    "pvc-size": "use --size instead.",
    "block-volume": "specify volume mode (filesystem/block) with --volume-mode instead.",
    # Not a virtctl flag: OpenShift's documentation uses it (`--dv-name=... --image-path=...`); read as `dv NAME`.
    "dv-name": "specify the name as the second argument instead.",
}


class UsageError(Exception):
    """Arguments virtctl refuses; the message is virtctl's."""


@dataclass(frozen=True)
class Flags:
    """The command line as given (flag name -> value), before interpretation."""

    insecure: bool = False
    uploadproxy_url: str = ""
    pvc_name: str = ""
    dv_name: str = ""
    pvc_size: str = ""
    size: str = ""
    storage_class: str = ""
    access_mode: str = ""
    block_volume: bool = False
    volume_mode: str = ""
    image_path: str = ""
    archive_path: str = ""
    no_create: bool = False
    wait_secs: int = 300
    retry: int = 5
    force_bind: bool = False
    datasource: bool = False
    default_instancetype: str = ""
    default_instancetype_kind: str = ""
    default_preference: str = ""
    default_preference_kind: str = ""
    namespace: str | None = None
    kubeconfig: Path | None = None


@dataclass(frozen=True)
class Options:
    """What to do: the target (`pvc` or `dv` NAME), how to make it, and how to upload."""

    name: str
    create_pvc: bool  # PVC mode; else DataVolume mode
    image_path: str
    archive: bool
    size: str
    volume_mode: str  # "", "block" or "filesystem"
    flags: Flags

    @property
    def kind(self) -> str:
        return "PersistentVolumeClaim" if self.create_pvc else "DataVolume"


def parse_args(args: tuple[str, ...], flags: Flags) -> Options:
    """virtctl's parseArgs and validateDefaultInstancetypeArgs, in its order, with two fixes: the deprecated
    `--pvc-name` form still checks the paths and honours `--block-volume` (virtctl skips both)."""
    if len(args) > 2:
        raise UsageError(f"accepts at most 2 arg(s), received {len(args)}")
    size = flags.size
    if size and flags.pvc_size and size != flags.pvc_size:
        raise UsageError("--pvc-size and --size can not be specified at the same time")
    if flags.pvc_size:
        size = flags.pvc_size
    if flags.pvc_name and flags.dv_name:
        raise UsageError("cannot use --pvc-name and --dv-name together")
    legacy = "pvc-name" if flags.pvc_name else ("dv-name" if flags.dv_name else "")
    if legacy and args:
        raise UsageError(f"cannot use --{legacy} and args")
    volume_mode = flags.volume_mode
    if flags.block_volume:
        if volume_mode == "":
            volume_mode = "block"
        elif volume_mode != "block":
            raise UsageError(f"incompatible --volume-mode '{volume_mode}' and --block-volume")
    if volume_mode not in ("block", "filesystem", ""):
        raise UsageError(f"Invalid volume mode '{volume_mode}'. Valid values are 'block' and 'filesystem'.")
    image_path, archive = flags.image_path, False
    if not flags.image_path and not flags.archive_path:
        raise UsageError("either image-path or archive-path must be provided")
    if flags.image_path and flags.archive_path:
        raise UsageError("cannot handle both image-path and archive-path, provide only one")
    if flags.archive_path:
        archive, image_path = True, flags.archive_path
        if volume_mode == "block":
            raise UsageError("In archive upload the volume mode should always be filesystem")
    if legacy:
        name, create_pvc = (flags.pvc_name, True) if legacy == "pvc-name" else (flags.dv_name, False)
    else:
        if len(args) != 2:
            raise UsageError("expecting two args")
        kind = args[0].lower()
        if kind not in ("dv", "pvc"):
            raise UsageError(f"invalid resource type {args[0]}")
        name, create_pvc = args[1], kind == "pvc"
    if flags.default_instancetype == "" and flags.default_instancetype_kind != "":
        raise UsageError("--default-instancetype must be provided with --default-instancetype-kind")
    if flags.default_preference == "" and flags.default_preference_kind != "":
        raise UsageError("--default-preference must be provided with --default-preference-kind")
    if (flags.default_instancetype or flags.default_preference) and flags.no_create:
        raise UsageError("--default-instancetype and --default-preference cannot be used with --no-create")
    return Options(name=name, create_pvc=create_pvc, image_path=image_path, archive=archive, size=size,
                   volume_mode=volume_mode, flags=flags)
