"""Every CDI controller on one manager: what `pycdi controller` and `pycdi up` run."""

from __future__ import annotations

from dataclasses import dataclass

from ..api.clonetoken import CloneTokens
from ..kube.client import KubeClient
from . import cdiconfig, clone, datavolume, importpod, storageprofile, transfer, uploadpod, vm
from .datavolume import clone_setup
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
    #: The upload controller's pods (the worker image is the importer's) and where it keeps the upload CAs.
    cdi_namespace: str = uploadpod.UploadOptions.cdi_namespace
    upload_workers: int = 3
    transfer_workers: int = 2
    #: The PEM private key clone tokens are signed with (the CDI API's); None: cross-namespace clones are refused.
    clone_token_key: bytes | None = None
    clone_workers: int = 3


def build_manager(client: KubeClient, options: ControllerOptions | None = None) -> Manager:
    options = options or ControllerOptions()
    manager = Manager(client)
    cdiconfig.add_to_manager(manager, cdiconfig.CDIConfigOptions(upload_proxy_url=options.upload_proxy_url))
    storageprofile.add_to_manager(manager, workers=options.storage_profile_workers)
    datavolume.add_to_manager(manager, workers=options.data_volume_workers)
    importpod.add_to_manager(manager, importpod.ImportOptions(
        pod=importpod.PodOptions(image=options.importer_image), retry_limit=options.import_retry_limit,
        workers=options.import_workers))
    uploadpod.add_to_manager(manager, uploadpod.UploadOptions(
        pod=importpod.PodOptions(image=options.importer_image), retry_limit=options.import_retry_limit,
        cdi_namespace=options.cdi_namespace, workers=options.upload_workers))
    transfer.add_to_manager(manager, workers=options.transfer_workers)
    tokens = CloneTokens.from_private_key(options.clone_token_key) if options.clone_token_key else None
    clone_setup.add_to_manager(manager, tokens, options.importer_image, workers=options.data_volume_workers)
    clone.add_to_manager(manager, tokens, clone.HostCloneOptions(
        pod=importpod.PodOptions(image=options.importer_image), retry_limit=options.import_retry_limit,
        workers=options.clone_workers))
    vm.add_to_manager(manager)
    return manager
