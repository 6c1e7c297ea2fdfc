"""The objects `pycdi image-upload` reads and writes through the Kubernetes API: the upload PVC or DataVolume
(checked or created as virtctl does), the proxy's URL, upload tokens and the optional DataSource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..api import constants as c
from ..api import upload as u
from ..api.groups import UPLOAD_GROUP
from ..api.quantity import QuantityError, canonical_quantity
from ..kube.client import KubeClient
from ..kube.errors import APIStatusError, NotFound
from ..kube.resources import (
    CDI_CONFIGS,
    CONFIG_MAPS,
    DATA_VOLUMES,
    PERSISTENT_VOLUME_CLAIMS,
    STORAGE_CLASSES,
    STORAGE_PROFILES,
    Resource,
)
from .uploadopts import MSG_READ_ONLY, READ_ONLY_MANY, Options

Obj = dict[str, Any]
UPLOAD_TOKEN_REQUESTS = Resource(UPLOAD_GROUP, u.UPLOAD_TOKEN_VERSION, u.UPLOAD_TOKEN_PLURAL, u.UPLOAD_TOKEN_KIND,
                                 True)
DATA_SOURCES = Resource(c.ANN_PREFIX, "v1beta1", "datasources", "DataSource", True)
TOKEN_NAME_PREFIX = "token-for-virtctl-"
CONFIG_NAME = "config"
ANN_DELETE_AFTER_COMPLETION = "cdi.kubevirt.io/storage.deleteAfterCompletion"
#: KubeVirt's instancetype labels (`kubevirt.io/api/instancetype`).
INSTANCETYPE_LABELS = {
    "default_instancetype": "instancetype.kubevirt.io/default-instancetype",
    "default_instancetype_kind": "instancetype.kubevirt.io/default-instancetype-kind",
    "default_preference": "instancetype.kubevirt.io/default-preference",
    "default_preference_kind": "instancetype.kubevirt.io/default-preference-kind",
}
DEFAULTS_CONFIG_MAP = "kubevirt-storage-class-defaults"
DEFAULTS_NAMESPACES = ("cdi", "openshift-cnv")
VOLUME_MODES = {"block": "Block", "filesystem": "Filesystem"}


class TargetError(Exception):
    """The target cannot take this upload; the message is virtctl's."""


class Target:
    """One upload target in one namespace, talked to through `client`."""

    def __init__(self, client: KubeClient, options: Options, namespace: str, say: Callable[[str], None]) -> None:
        self.client = client
        self.options = options
        self.flags = options.flags
        self.namespace = namespace
        self.name = options.name
        self.say = say
        #: A DataVolume found without its PVC by `existing_pvc`: it is used, not created.
        self.pending_dv: Obj | None = None

    # ---- an existing PVC -------------------------------------------------------------------------------

    async def existing_pvc(self) -> Obj | None:
        """getAndValidateUploadPVC: the PVC to upload to, None when it must be created; TargetError when the PVC
        (or its DataVolume) cannot take an upload."""
        try:
            pvc = await self.client.get(PERSISTENT_VOLUME_CLAIMS, self.name, self.namespace)
        except NotFound:
            self.say(f"PVC {self.namespace}/{self.name} not found ")
            if not self.options.create_pvc:
                # A DataVolume whose PVC is not made yet (or waits for a consumer): upload to it, where virtctl
                # would try to create it again and fail with AlreadyExists.
                self.pending_dv = await self._data_volume()
                if self.pending_dv is not None:
                    return None
            if self.flags.no_create:
                raise
            return None
        if not self.options.create_pvc:
            pvc = await self._data_volume_pvc(pvc)
        ann = pvc["metadata"].get("annotations") or {}
        if ann.get(c.ANN_POD_PHASE) == "Succeeded":
            raise TargetError(f"PVC {self.name} already successfully imported/cloned/updated")
        if not self.flags.no_create and c.ANN_UPLOAD_REQUEST not in ann:
            raise TargetError(f"PVC {self.name} not available for upload")
        if self.options.archive and ann.get(c.ANN_CONTENT_TYPE) != c.ContentType.ARCHIVE:
            raise TargetError(f"PVC {self.name} doesn't have archive contentType annotation")
        return pvc

    async def _data_volume(self) -> Obj | None:
        try:
            return await self.client.get(DATA_VOLUMES, self.name, self.namespace)
        except NotFound:
            return None

    async def _data_volume_pvc(self, pvc: Obj) -> Obj:
        """validateUploadDataVolume: the DataVolume must exist; with populators the upload goes to PVC'."""
        dv = await self._data_volume()
        ann = pvc["metadata"].get("annotations") or {}
        if dv is None:
            if ann.get(ANN_DELETE_AFTER_COMPLETION) == "true" and ann.get(c.ANN_POD_PHASE) == "Succeeded":
                raise TargetError(f"DataVolume already garbage-collected: Assuming PVC {self.namespace}/{self.name} "
                                  "is successfully populated")
            raise TargetError(f"No DataVolume is associated with the existing PVC {self.namespace}/{self.name}")
        if (dv["metadata"].get("annotations") or {}).get(c.ANN_USE_POPULATOR) == "true":
            if (pvc.get("status") or {}).get("phase") == "Bound":
                raise TargetError(f"PVC {self.name} already successfully populated")
            prime = ann.get(c.ANN_PVC_PRIME_NAME)
            if not prime:
                raise TargetError(f"Unable to get PVC Prime name from PVC {self.namespace}/{self.name}")
            try:
                return await self.client.get(PERSISTENT_VOLUME_CLAIMS, prime, self.namespace)
            except APIStatusError:
                raise TargetError(f"Unable to get PVC Prime {self.namespace}/{self.name}") from None
        return pvc

    async def ensure_upload_target(self, pvc: Obj) -> None:
        """ensurePVCSupportsUpload: an existing PVC (`--no-create`) is annotated as an upload target."""
        ann = pvc["metadata"].get("annotations") or {}
        if c.ANN_UPLOAD_REQUEST not in ann:
            await self.client.patch(PERSISTENT_VOLUME_CLAIMS, pvc["metadata"]["name"],
                                    {"metadata": {"annotations": {c.ANN_UPLOAD_REQUEST: ""}}}, self.namespace)

    # ---- creating one ----------------------------------------------------------------------------------

    def _quantity(self) -> str:
        try:
            return canonical_quantity(self.options.size)
        except QuantityError as e:
            raise TargetError(f"validation failed for size={self.options.size}: {e}") from None

    def _labels(self) -> dict[str, str]:
        return {label: str(getattr(self.flags, flag)) for flag, label in INSTANCETYPE_LABELS.items()
                if getattr(self.flags, flag)}

    def _annotations(self) -> dict[str, str]:
        return {c.ANN_IMMEDIATE_BINDING: ""} if self.flags.force_bind else {}

    def _content_type(self) -> str:
        return (c.ContentType.ARCHIVE if self.options.archive else c.ContentType.KUBEVIRT).value

    async def _check_storage_class(self) -> None:
        if self.flags.storage_class:
            await self.client.get(STORAGE_CLASSES, self.flags.storage_class)

    async def create_pvc(self) -> Obj:
        """createUploadPVC: storage.RenderPVC (ReadWriteOnce unless told), the upload annotations and the label
        that lets CDI's PVC webhook apply the StorageProfile."""
        if self.flags.access_mode == READ_ONLY_MANY:
            raise TargetError(MSG_READ_ONLY)
        await self._check_storage_class()
        spec: Obj = {"accessModes": [self.flags.access_mode or "ReadWriteOnce"],
                     "resources": {"requests": {"storage": self._quantity()}}}
        if self.flags.storage_class:
            spec["storageClassName"] = self.flags.storage_class
        if self.options.volume_mode:
            spec["volumeMode"] = VOLUME_MODES[self.options.volume_mode]
        pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": self.name, "namespace": self.namespace,
                            "annotations": {c.ANN_UPLOAD_REQUEST: "", c.ANN_CONTENT_TYPE: self._content_type(),
                                            **self._annotations()},
                            "labels": {c.LABEL_APPLY_STORAGE_PROFILE: "true", **self._labels()}},
               "spec": spec}
        return await self.client.create(PERSISTENT_VOLUME_CLAIMS, pvc, self.namespace)

    async def create_data_volume(self) -> Obj:
        """createUploadDataVolume: `source.upload: {}` with a `storage` spec the StorageProfile completes."""
        storage: Obj = {"resources": {"requests": {"storage": self._quantity()}}}
        if self.flags.storage_class:
            storage["storageClassName"] = self.flags.storage_class
        if self.flags.access_mode:
            if self.flags.access_mode == READ_ONLY_MANY:
                raise TargetError(MSG_READ_ONLY)
            storage["accessModes"] = [self.flags.access_mode]
        if self.options.volume_mode:
            storage["volumeMode"] = VOLUME_MODES[self.options.volume_mode]
            if not self.flags.access_mode and not await self._profile_has_modes(storage["volumeMode"]):
                # The claim would be invalid ("no matching accessMode specified in StorageProfile"), the one
                # outcome virtctl leaves the user with here; every provisioner supports ReadWriteOnce.
                storage["accessModes"] = ["ReadWriteOnce"]
        await self._check_storage_class()
        meta: Obj = {"name": self.name, "namespace": self.namespace, "annotations": self._annotations()}
        if self._labels():
            meta["labels"] = self._labels()
        dv = {"apiVersion": f"{c.ANN_PREFIX}/v1beta1", "kind": "DataVolume", "metadata": meta,
              "spec": {"source": {"upload": {}}, "contentType": self._content_type(), "storage": storage}}
        return await self.client.create(DATA_VOLUMES, dv, self.namespace)

    async def _profile_has_modes(self, volume_mode: str) -> bool:
        """Whether the DataVolume controller finds access modes for `volume_mode`: in the StorageProfile of the
        class it will use, or in the `kubevirt-storage-class-defaults` ConfigMap. True when it cannot be told
        (no permission to read them): then the DataVolume goes as virtctl would send it."""
        try:
            name = self.flags.storage_class or await self._default_class()
            if not name:
                return True
            profile = await self.client.get(STORAGE_PROFILES, name)
        except APIStatusError:
            return True
        for claim_set in (profile.get("status") or {}).get("claimPropertySets") or []:
            if claim_set.get("volumeMode") == volume_mode and claim_set.get("accessModes"):
                return True
        for namespace in DEFAULTS_NAMESPACES:
            try:
                data = (await self.client.get(CONFIG_MAPS, DEFAULTS_CONFIG_MAP, namespace)).get("data") or {}
            except APIStatusError:
                continue
            if data.get(f"{name}.accessMode") or data.get("accessMode"):
                return True
        return False

    async def _default_class(self) -> str:
        """The class a DataVolume without one gets: the default virt class, else the default class."""
        classes = (await self.client.list(STORAGE_CLASSES))["items"]
        for annotation in (c.ANN_DEFAULT_VIRT_STORAGE_CLASS, c.ANN_DEFAULT_STORAGE_CLASS):
            marked = [sc for sc in classes
                      if ((sc.get("metadata") or {}).get("annotations") or {}).get(annotation) == "true"]
            if marked:
                marked.sort(key=lambda sc: sc["metadata"].get("name", ""))
                marked.sort(key=lambda sc: sc["metadata"].get("creationTimestamp", ""), reverse=True)
                return str(marked[0]["metadata"]["name"])
        return ""

    # ---- uploading -------------------------------------------------------------------------------------

    async def proxy_url(self) -> str:
        """getUploadProxyURL: CDIConfig `config`'s `spec.uploadProxyURLOverride`, else `status.uploadProxyURL`."""
        config = await self.client.get(CDI_CONFIGS, CONFIG_NAME)
        override = (config.get("spec") or {}).get("uploadProxyURLOverride")
        if override:
            return str(override)
        return str((config.get("status") or {}).get("uploadProxyURL") or "")

    async def token(self) -> str:
        """A fresh upload token for the PVC (an UploadTokenRequest, valid 5 minutes)."""
        request = {"apiVersion": u.UPLOAD_TOKEN_API_VERSION, "kind": u.UPLOAD_TOKEN_KIND,
                   "metadata": {"generateName": TOKEN_NAME_PREFIX, "namespace": self.namespace},
                   "spec": {"pvcName": self.name}}
        answer = await self.client.create(UPLOAD_TOKEN_REQUESTS, request, self.namespace)
        token = str((answer.get("status") or {}).get("token") or "")
        if not token:
            raise TargetError("the UploadTokenRequest was answered without a token")
        return token

    async def data_source(self) -> None:
        """`--datasource`: a DataSource named as the volume pointing at it (created, or updated)."""
        source = {"name": self.name, "namespace": self.namespace}
        try:
            existing = await self.client.get(DATA_SOURCES, self.name, self.namespace)
        except NotFound:
            body = {"apiVersion": f"{c.ANN_PREFIX}/v1beta1", "kind": "DataSource",
                    "metadata": {"name": self.name, "namespace": self.namespace, "labels": self._labels()},
                    "spec": {"source": {"pvc": source}}}
            await self.client.create(DATA_SOURCES, body, self.namespace)
            self.say(f"Created a new DataSource {self.namespace}/{self.name}")
            return
        labels = {**(existing["metadata"].get("labels") or {}), **self._labels()}
        await self.client.patch(DATA_SOURCES, self.name, [
            {"op": "add", "path": "/metadata/labels", "value": labels},
            {"op": "add", "path": "/spec/source/pvc", "value": source}], self.namespace, patch_type="json")
        self.say(f"Updated an existing DataSource {self.namespace}/{self.name}")
