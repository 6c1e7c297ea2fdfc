"""The CDIConfig controller: keeps the singleton `config` and computes its status as upstream's config-controller."""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass
from typing import Any

from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, NotFound
from ...kube.resources import CDI_CONFIGS, STORAGE_CLASSES
from ..runtime import Controller, Informer, Manager, Request, Result

log = logging.getLogger(__name__)

NAME = "cdiconfig-controller"
CONFIG_NAME = "config"
CDI_LABELS = {"app": "containerized-data-importer", "cdi.kubevirt.io": ""}
DEFAULT_GLOBAL_OVERHEAD = "0.06"
#: Upstream's default importer/uploader/cloner pod resources.
DEFAULT_LIMITS = {"cpu": "750m", "memory": "600M"}
DEFAULT_REQUESTS = {"cpu": "100m", "memory": "60M"}
PERCENT = re.compile(r"^(0(?:\.\d{1,3})?|1)$")


class InvalidOverhead(Exception):
    pass


@dataclass(frozen=True)
class CDIConfigOptions:
    #: The upload proxy's URL when no override is set (upstream reads it from an Ingress or Route).
    upload_proxy_url: str | None = None
    config_name: str = CONFIG_NAME


def compute_status(config: dict[str, Any], class_names: list[str], options: CDIConfigOptions) -> dict[str, Any]:
    """The status upstream's reconcile leaves, from the spec, the classes that exist and our options."""
    spec = config.get("spec") or {}
    status: dict[str, Any] = copy.deepcopy(config.get("status") or {})
    status["preallocation"] = bool(spec.get("preallocation"))
    url = spec.get("uploadProxyURLOverride") or options.upload_proxy_url
    if url:
        status["uploadProxyURL"] = url
    else:
        status.pop("uploadProxyURL", None)
    # Since upstream #4054: the override if that class exists, else "" (scratch then uses the target's class).
    scratch = spec.get("scratchSpaceStorageClass")
    status["scratchSpaceStorageClass"] = scratch if scratch and scratch in class_names else ""
    status["defaultPodResourceRequirements"] = _pod_resources(spec.get("podResourceRequirements") or {})
    if spec.get("imagePullSecrets") is not None:
        status["imagePullSecrets"] = copy.deepcopy(spec["imagePullSecrets"])
    else:
        status.pop("imagePullSecrets", None)
    status["filesystemOverhead"] = _overhead(spec.get("filesystemOverhead") or {}, class_names)
    status["importProxy"] = copy.deepcopy(spec.get("importProxy")) if spec.get("importProxy") is not None else {
        # No OpenShift cluster-wide Proxy here: upstream then reports its empty values.
        "HTTPProxy": "", "HTTPSProxy": "", "noProxy": "", "trustedCAProxy": ""}
    return status


def _pod_resources(wanted: dict[str, Any]) -> dict[str, Any]:
    limits, requests = dict(DEFAULT_LIMITS), dict(DEFAULT_REQUESTS)
    for out, key in ((limits, "limits"), (requests, "requests")):
        for resource in ("cpu", "memory"):
            value = (wanted.get(key) or {}).get(resource)
            if value is not None:
                out[resource] = value
    return {"limits": limits, "requests": requests}


def _overhead(wanted: dict[str, Any], class_names: list[str]) -> dict[str, Any]:
    global_overhead = DEFAULT_GLOBAL_OVERHEAD
    if PERCENT.match(str(wanted.get("global", ""))):
        global_overhead = str(wanted["global"])
    per_class = wanted.get("storageClass") or {}
    out: dict[str, str] = {}
    for name in class_names:
        if name in per_class:
            if not PERCENT.match(str(per_class[name])):
                raise InvalidOverhead(f"invalid filesystem overhead {per_class[name]!r} for storage class {name}")
            out[name] = str(per_class[name])
        else:
            out[name] = global_overhead
    return {"global": global_overhead, "storageClass": out}


class CDIConfigReconciler:
    def __init__(self, client: KubeClient, classes: Informer, options: CDIConfigOptions) -> None:
        self.client = client
        self.classes = classes
        self.options = options

    async def reconcile(self, request: Request) -> Result:
        if request.name != self.options.config_name:
            return Result()
        config = await self._get_or_create()
        names = sorted(sc["metadata"]["name"] for sc in self.classes.list())
        desired = copy.deepcopy(config)
        desired["metadata"]["labels"] = {**(config["metadata"].get("labels") or {}), **CDI_LABELS}
        desired["status"] = compute_status(config, names, self.options)
        if desired != config:
            # CDIConfig has no status subresource: upstream writes the whole object.
            await self.client.update(CDI_CONFIGS, desired)
        return Result()

    async def _get_or_create(self) -> dict[str, Any]:
        # Read past the cache, as upstream's uncached client: a stale copy would only cost a conflict.
        try:
            return await self.client.get(CDI_CONFIGS, self.options.config_name)
        except NotFound:
            pass
        body = {"apiVersion": CDI_CONFIGS.api_version, "kind": CDI_CONFIGS.kind,
                "metadata": {"name": self.options.config_name, "labels": dict(CDI_LABELS)}, "spec": {}}
        try:
            created = await self.client.create(CDI_CONFIGS, body)
            log.info("created CDIConfig %s", self.options.config_name)
            return created
        except AlreadyExists:
            return await self.client.get(CDI_CONFIGS, self.options.config_name)


def add_to_manager(manager: Manager, options: CDIConfigOptions | None = None) -> Controller:
    options = options or CDIConfigOptions()
    classes = manager.informer(STORAGE_CLASSES)
    configs = manager.informer(CDI_CONFIGS)
    controller = Controller(NAME, CDIConfigReconciler(manager.client, classes, options))
    singleton = [Request(options.config_name)]
    controller.watch(configs, lambda obj: singleton if obj["metadata"]["name"] == options.config_name else [])
    controller.watch(classes, lambda _obj: singleton)
    controller.enqueue_on_start(singleton[0])
    manager.add(controller)
    return controller
