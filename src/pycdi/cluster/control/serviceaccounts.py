"""Per-namespace defaults: the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap (cluster CA)."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from ..apiserver import errors
from ..apiserver.service import ObjectService, WriteContext
from ..apiserver.store import DELETED, Event
from .loops import NAMESPACES_KEY, Loop, builtin, ignore_gone, meta

DEFAULT_SA = "default"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
#: The annotation kube-controller-manager's root-ca-cert-publisher puts on the ConfigMap.
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
               "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
               "guaranteed across distributions of Kubernetes clusters.")


class ServiceAccountLoop(Loop):
    """Ensures every active namespace has its default ServiceAccount and the root CA ConfigMap."""

    name = "serviceaccounts"

    def __init__(self, service: ObjectService, ca_pem: bytes) -> None:
        super().__init__(service)
        self.ca = ca_pem.decode()

    def on_event(self, event: Event) -> None:
        if event.key == NAMESPACES_KEY:
            if event.type != DELETED and not meta(event.object).get("deletionTimestamp"):
                self.queue.add(event.name)
        elif event.key == "core/serviceaccounts" and event.name == DEFAULT_SA and event.type == DELETED:
            self.queue.add(event.namespace)
        elif event.key == "core/configmaps" and event.name == ROOT_CA_CONFIGMAP:
            if event.type == DELETED or (event.object.get("data") or {}).get(ROOT_CA_KEY) != self.ca:
                self.queue.add(event.namespace)

    def initial_keys(self) -> Iterable[Hashable]:
        return [str(meta(ns).get("name")) for ns in self.store.iter_objects(NAMESPACES_KEY)
                if not meta(ns).get("deletionTimestamp")]

    async def reconcile(self, key: Hashable) -> None:
        namespace = str(key)
        ns = self.store.get(NAMESPACES_KEY, "", namespace)
        if ns is None or meta(ns).get("deletionTimestamp"):
            return
        await self._ensure_service_account(namespace)
        await self._ensure_root_ca(namespace)

    async def _create(self, group: str, plural: str, namespace: str, body: dict[str, Any]) -> None:
        try:
            await self.service.create(builtin(self.service, group, plural), namespace, body, WriteContext())
        except errors.APIError as e:
            if e.code != 409 and not ignore_gone(e):  # 409: created meanwhile; 403/404: namespace going
                raise

    async def _ensure_service_account(self, namespace: str) -> None:
        info = builtin(self.service, "", "serviceaccounts")
        if self.service.find(info, namespace, DEFAULT_SA) is None:
            await self._create("", "serviceaccounts", namespace, {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_SA, "namespace": namespace}})

    async def _ensure_root_ca(self, namespace: str) -> None:
        info = builtin(self.service, "", "configmaps")
        current = self.service.find(info, namespace, ROOT_CA_CONFIGMAP)
        if current is None:
            await self._create("", "configmaps", namespace, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": namespace,
                             "annotations": {"kubernetes.io/description": DESCRIPTION}},
                "data": {ROOT_CA_KEY: self.ca}})
            return
        if current.get("data") == {ROOT_CA_KEY: self.ca}:
            return
        current["data"] = {ROOT_CA_KEY: self.ca}
        annotations = current["metadata"].setdefault("annotations", {})
        annotations["kubernetes.io/description"] = DESCRIPTION
        try:
            await self.service.update(info, namespace, ROOT_CA_CONFIGMAP, current, WriteContext(),
                                      require_rv=True)
        except errors.APIError as e:
            if not ignore_gone(e):
                raise
