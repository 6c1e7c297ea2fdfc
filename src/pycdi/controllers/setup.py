"""Every CDI controller on one manager: what `pycdi controller` and `pycdi up` run."""

from __future__ import annotations

from dataclasses import dataclass

from ..kube.client import KubeClient
from . import cdiconfig, datavolume, importpod, storageprofile
from .runtime import Manager


@dataclass(frozen=True)
class ControllerOptions:
    upload_proxy_url: str | None = None
    storage_profile_workers: int = 3
    data_volume_workers: int = 3
    #: The import controller's importer pods and retry bound (importpod.ImportOptions).
    importer_image: str = importpod.PodOptions.image
    import_retry_limit: int = importpod.ImportOptions.retry_limit
    import_workers: int = 3


def build_manager(client: KubeClient, options: ControllerOptions | None = None) -> Manager:
    options = options or ControllerOptions()
    manager = Manager(client)
    cdiconfig.add_to_manager(manager, cdiconfig.CDIConfigOptions(upload_proxy_url=options.upload_proxy_url))
    storageprofile.add_to_manager(manager, workers=options.storage_profile_workers)
    datavolume.add_to_manager(manager, workers=options.data_volume_workers)
    importpod.add_to_manager(manager, importpod.ImportOptions(
        pod=importpod.PodOptions(image=options.importer_image), retry_limit=options.import_retry_limit,
        workers=options.import_workers))
    return manager
