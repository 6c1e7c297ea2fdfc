"""The VirtualMachine controller's storage part (KubeVirt's `handleDataVolumes`): each `dataVolumeTemplates` entry
becomes a DataVolume named as the template, controlled by the VM (`blockOwnerDeletion`, label
`kubevirt.io/created-by`), so deleting the VM deletes them and an orphaning delete keeps them.

A template cloning from another namespace is created only when the VM's ServiceAccount (its `serviceAccount`
volume, else `default`) may clone there, asked by SubjectAccessReview; otherwise `UnauthorizedDataVolumeCreate`
and another try later (a RoleBinding may come). The status reports the volumes (`DataVolumesReady`,
`printableStatus` Provisioning until they are ready) and says honestly that no virtual machine runs here.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

from ...api import cloneauth
from ...api import constants as c
from ...kube.client import KubeClient
from ...kube.errors import AlreadyExists, APIStatusError, NotFound
from ...kube.events import EventRecorder
from ...kube.resources import DATA_VOLUMES, PERSISTENT_VOLUME_CLAIMS, SUBJECT_ACCESS_REVIEWS, VIRTUAL_MACHINES
from ..runtime import Controller, Informer, Manager, Request, Result

log = logging.getLogger(__name__)

NAME = "virtualmachine-controller"
RETRY_UNAUTHORIZED = 10.0
# KubeVirt's event reasons and condition vocabulary.
SUCCESSFUL_CREATE = "SuccessfulDataVolumeCreate"
FAILED_CREATE = "FailedDataVolumeCreate"
FAILED_IMPORT = "FailedDataVolumeImport"
SOURCE_PVC_NOT_AVAILABLE = "SourcePVCNotAvailabe"  # sic: KubeVirt's spelling, matched by tools
DATA_VOLUMES_READY = "DataVolumesReady"
ALL_DVS_READY = ("AllDVsReady", "All of the VMI's DVs are bound and not running")
NOT_ALL_DVS_READY = ("NotAllDVsReady", "Not all of the VMI's DVs are ready")
READY = "Ready"
FAILURE = "Failure"
VMI_NOT_EXISTS = ("VMINotExists", "VMI does not exist")
#: pycdi: the VM asks to run, which this cluster never does.
NOT_RUN_HERE = ("RunningNotSupported", "pycdi provides the VM's storage only; it does not run virtual machines")
PROVISIONING, STOPPED, DATA_VOLUME_ERROR = "Provisioning", "Stopped", "DataVolumeError"
Obj = dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def wants_to_run(vm: Obj) -> bool:
    spec = vm.get("spec") or {}
    strategy = spec.get("runStrategy")
    if strategy:
        return str(strategy) in ("Always", "RerunOnFailure", "Once")
    return bool(spec.get("running"))


def service_account(vm: Obj) -> str:
    """The VM's ServiceAccount: its last `serviceAccount` volume (as KubeVirt), else `default`."""
    name = cloneauth.DEFAULT_SERVICE_ACCOUNT
    template_spec = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    for volume in template_spec.get("volumes") or []:
        sa = volume.get("serviceAccount")
        if isinstance(sa, dict) and sa.get("serviceAccountName"):
            name = str(sa["serviceAccountName"])
    return name


def data_volume_for(vm: Obj, template: Obj) -> Obj:
    """CreateDataVolumeManifest: named as the template, in the VM's namespace, controlled by the VM."""
    meta = _meta(vm)
    tmeta = copy.deepcopy(template.get("metadata") or {})
    spec = copy.deepcopy(template.get("spec") or {})
    source_pvc = (spec.get("source") or {}).get("pvc")
    if isinstance(source_pvc, dict) and not source_pvc.get("namespace"):
        source_pvc["namespace"] = meta.get("namespace")
    template_spec = ((vm.get("spec") or {}).get("template") or {}).get("spec") or {}
    if not spec.get("priorityClassName") and template_spec.get("priorityClassName"):
        spec["priorityClassName"] = template_spec["priorityClassName"]
    labels = {**(tmeta.get("labels") or {}), c.LABEL_KUBEVIRT_CREATED_BY: str(meta.get("uid") or "")}
    annotations = {**(tmeta.get("annotations") or {}), c.ANN_ALLOW_CLAIM_ADOPTION: "true"}
    return {
        "apiVersion": DATA_VOLUMES.api_version, "kind": "DataVolume",
        "metadata": {"name": tmeta.get("name"), "namespace": meta.get("namespace"), "labels": labels,
                     "annotations": annotations,
                     "ownerReferences": [{"apiVersion": VIRTUAL_MACHINES.api_version, "kind": "VirtualMachine",
                                          "name": meta.get("name"), "uid": meta.get("uid"), "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": spec,
    }


def _dv_ready(dv: Obj) -> bool:
    for cond in (dv.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _condition(old: list[Obj], type_: str, status: str, reason: str, message: str) -> Obj:
    previous = next((x for x in old if x.get("type") == type_), None)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else _now()
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastProbeTime": None,
            "lastTransitionTime": since}


class VirtualMachineReconciler:
    def __init__(self, client: KubeClient, vms: Informer, dvs: Informer, pvcs: Informer) -> None:
        self.client = client
        self.vms = vms
        self.dvs = dvs
        self.pvcs = pvcs
        self.recorder = EventRecorder(client, NAME)

    async def reconcile(self, request: Request) -> Result:
        vm = self.vms.get(request.name, request.namespace)
        if vm is None or _meta(vm).get("deletionTimestamp"):
            return Result()  # the garbage collector deletes (or orphans) the DataVolumes it controls
        failures: list[tuple[str, str]] = []
        volumes: list[Obj | None] = []
        for template in (vm.get("spec") or {}).get("dataVolumeTemplates") or []:
            name = str((template.get("metadata") or {}).get("name") or "")
            dv = self.dvs.get(name, request.namespace)
            if dv is None:
                dv = await self._create(vm, template, failures)
            elif (dv.get("status") or {}).get("phase") == c.DataVolumePhase.FAILED:
                await self.recorder.warning(vm, FAILED_IMPORT, f"DataVolume {name} failed to import disk image")
            volumes.append(dv)
        await self._update_status(vm, volumes, failures)
        return Result(requeue_after=RETRY_UNAUTHORIZED) if failures else Result()

    async def _create(self, vm: Obj, template: Obj, failures: list[tuple[str, str]]) -> Obj | None:
        dv = data_volume_for(vm, template)
        name = str(dv["metadata"]["name"])
        source = cloneauth.clone_source(dv)
        if source is not None:
            if self.pvcs.get(source.name, source.namespace) is None:
                await self.recorder.warning(vm, SOURCE_PVC_NOT_AVAILABLE, f"Source PVC {source.name} not available: "
                                            f"Target PVC {name} will remain unpopulated until source is created")
            why = await self._unauthorized(vm, source)
            if why:
                message = f"Not authorized to create DataVolume {name}: {why}"
                await self.recorder.warning(vm, cloneauth.UNAUTHORIZED_DATA_VOLUME_CREATE, message)
                failures.append((cloneauth.UNAUTHORIZED_DATA_VOLUME_CREATE, message))
                return None
        try:
            created = await self.client.create(DATA_VOLUMES, dv)
        except AlreadyExists:
            return self.dvs.get(name, str(_meta(vm).get("namespace")))
        except APIStatusError as e:
            message = f"Error creating DataVolume {name}: {e.message}"
            await self.recorder.warning(vm, FAILED_CREATE, message)
            failures.append((FAILED_CREATE, message))
            return None
        await self.recorder.normal(vm, SUCCESSFUL_CREATE, f"Created DataVolume {name}")
        log.info("created DataVolume %s/%s for VirtualMachine %s", _meta(vm).get("namespace"), name,
                 _meta(vm).get("name"))
        return created

    async def _unauthorized(self, vm: Obj, source: cloneauth.CloneSource) -> str:
        """authorizeDataVolume: "" when the VM's ServiceAccount may clone the source, else upstream's reason."""
        namespace = str(_meta(vm).get("namespace") or "")
        if source.namespace == namespace:
            return ""
        account = service_account(vm)
        spec = cloneauth.service_account_spec(namespace, account)
        for review in cloneauth.reviews(spec, source):
            answer = await self.client.create(SUBJECT_ACCESS_REVIEWS, review)
            if (answer.get("status") or {}).get("allowed") is True:
                return ""
        return cloneauth.denied_message(cloneauth.service_account_user(namespace, account), source.namespace)

    async def _update_status(self, vm: Obj, volumes: list[Obj | None], failures: list[tuple[str, str]]) -> None:
        old = copy.deepcopy(vm.get("status") or {})
        old_conditions: list[Obj] = list(old.get("conditions") or [])
        status = copy.deepcopy(old)
        conditions: list[Obj] = [x for x in old_conditions if x.get("type") not in (DATA_VOLUMES_READY, READY,
                                                                                      FAILURE)]
        all_ready = all(dv is not None and _dv_ready(dv) for dv in volumes)
        failed = any(dv is not None and (dv.get("status") or {}).get("phase") == c.DataVolumePhase.FAILED
                     for dv in volumes)
        if volumes:
            reason, message = ALL_DVS_READY if all_ready else NOT_ALL_DVS_READY
            conditions.append(_condition(old_conditions, DATA_VOLUMES_READY, "True" if all_ready else "False",
                                         reason, message))
        reason, message = NOT_RUN_HERE if wants_to_run(vm) else VMI_NOT_EXISTS
        conditions.append(_condition(old_conditions, READY, "False", reason, message))
        if failures:
            conditions.append(_condition(old_conditions, FAILURE, "True", failures[0][0], failures[0][1]))
        status["conditions"] = conditions
        status["printableStatus"] = DATA_VOLUME_ERROR if failed else STOPPED if all_ready else PROVISIONING
        status["ready"] = False
        status["created"] = False
        strategy = (vm.get("spec") or {}).get("runStrategy") or ("Always" if wants_to_run(vm) else "Halted")
        status["runStrategy"] = strategy
        if status == old:
            return
        try:
            await self.client.patch_status(VIRTUAL_MACHINES, str(_meta(vm).get("name")), {"status": status},
                                           str(_meta(vm).get("namespace")))
        except NotFound:
            pass


def add_to_manager(manager: Manager, workers: int = 2) -> Controller:
    vms = manager.informer(VIRTUAL_MACHINES)
    dvs = manager.informer(DATA_VOLUMES)
    pvcs = manager.informer(PERSISTENT_VOLUME_CLAIMS)
    controller = Controller(NAME, VirtualMachineReconciler(manager.client, vms, dvs, pvcs), workers=workers)

    def owning_vm(obj: Obj) -> list[Request]:
        meta = _meta(obj)
        return [Request(str(ref.get("name")), str(meta.get("namespace") or ""))
                for ref in meta.get("ownerReferences") or []
                if ref.get("controller") and ref.get("kind") == "VirtualMachine"]

    def templated_vm(dv: Obj) -> list[Request]:
        """A DataVolume named in a VM's templates came or went (a deleted one is made again)."""
        meta = _meta(dv)
        ns, name = str(meta.get("namespace") or ""), meta.get("name")
        return [Request(str(_meta(vm).get("name")), ns) for vm in vms.list(ns)
                if any((t.get("metadata") or {}).get("name") == name
                       for t in (vm.get("spec") or {}).get("dataVolumeTemplates") or [])] + owning_vm(dv)

    controller.watch(vms)
    controller.watch(dvs, templated_vm)
    manager.add(controller)
    return controller
