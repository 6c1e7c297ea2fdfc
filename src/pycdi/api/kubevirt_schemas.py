"""Schemas of KubeVirt's VirtualMachine and VirtualMachineInstance (kubevirt.io/v1).

Modelled field by field where CDI and common manifests touch them (volumes, disks, interfaces,
networks, resources, dataVolumeTemplates, status); deep, rarely used subtrees (CPU topology
details, firmware, features, probes, device passthrough...) are kept as sent rather than guessed.
"""

from __future__ import annotations

from pycdi.api.cdi_schemas import data_volume_spec
from pycdi.api.core_schemas import (
    affinity,
    condition,
    local_object_reference,
    quantity_map,
    toleration,
)
from pycdi.api.schema_dsl import (
    Schema,
    arr,
    boolean,
    date_time,
    embedded_metadata,
    empty_obj,
    int32,
    int64,
    integer,
    obj,
    preserve_unknown,
    quantity,
    str_map,
    string,
)

RUN_STRATEGIES = ("Always", "RerunOnFailure", "Manual", "Halted", "Once", "WaitAsReceiver")


def _disk() -> Schema:
    def target(*extra: str) -> Schema:
        props: dict[str, Schema] = {"bus": string(), "readonly": boolean()}
        for name in extra:
            props[name] = boolean() if name == "reservation" else string()
        return obj(props)

    return obj(
        {
            "blockSize": preserve_unknown(),
            "bootOrder": integer(),
            "cache": string(),
            "cdrom": target("tray"),
            "changedBlockTracking": boolean(),
            "dedicatedIOThread": boolean(),
            "disk": target("pciAddress"),
            "errorPolicy": string(),
            "io": string(),
            "lun": target("reservation"),
            "name": string(),
            "serial": string(),
            "shareable": boolean(),
            "tag": string(),
        },
        ["name"],
    )


def _interface() -> Schema:
    port = obj({"name": string(), "port": int32(), "protocol": string()}, ["port"])
    return obj(
        {
            "acpiIndex": integer(),
            "binding": obj({"name": string()}, ["name"]),
            "bootOrder": integer(),
            "bridge": empty_obj(),
            "dhcpOptions": preserve_unknown(),
            "macAddress": string(),
            "macvtap": empty_obj(),
            "masquerade": empty_obj(),
            "model": string(),
            "name": string(),
            "passt": empty_obj(),
            "passtBinding": empty_obj(),
            "pciAddress": string(),
            "portRanges": arr(preserve_unknown(), list_type="atomic"),
            "ports": arr(port),
            "slirp": empty_obj(),
            "sriov": empty_obj(),
            "state": string(),
            "tag": string(),
        },
        ["name"],
    )


def _devices() -> Schema:
    flags = ("autoattachGraphicsDevice", "autoattachInputDevice", "autoattachMemBalloon",
             "autoattachPodInterface", "autoattachSerialConsole", "autoattachVSOCK", "blockMultiQueue",
             "disableHotplug", "logSerialConsole", "networkInterfaceMultiqueue", "useVirtioTransitional")
    props: dict[str, Schema] = {name: boolean() for name in flags}
    for deep in ("clientPassthrough", "downwardMetrics", "rng", "sound", "tpm", "video", "watchdog"):
        props[deep] = preserve_unknown()
    for deep_list in ("filesystems", "gpus", "hostDevices"):
        props[deep_list] = arr(preserve_unknown(), list_type="atomic")
    for deep_list in ("inputs", "panicDevices"):
        props[deep_list] = arr(preserve_unknown())
    props["disks"] = arr(_disk(), max_items=256)
    props["interfaces"] = arr(_interface(), max_items=256)
    return obj(props)


def _domain() -> Schema:
    cpu = obj(
        {
            "cores": int32(), "dedicatedCpuPlacement": boolean(), "isolateEmulatorThread": boolean(),
            "maxSockets": int32(), "model": string(), "sockets": int32(), "threads": int32(),
        },
        preserve_unknown=True,  # features, numa, realtime
    )
    memory = obj({
        "guest": quantity(),
        "hugepages": obj({"pageSize": string()}),
        "maxGuest": quantity(),
        "reservedOverhead": preserve_unknown(),
    })
    resources = obj({"limits": quantity_map(), "overcommitGuestOverhead": boolean(),
                     "requests": quantity_map()})
    return obj(
        {
            "chassis": preserve_unknown(),
            "clock": preserve_unknown(),
            "cpu": cpu,
            "devices": _devices(),
            "features": preserve_unknown(),
            "firmware": preserve_unknown(),
            "ioThreads": preserve_unknown(),
            "ioThreadsPolicy": string(),
            "launchSecurity": preserve_unknown(),
            "machine": obj({"type": string()}),
            "memory": memory,
            "rebootPolicy": string(enum=["Reboot", "Terminate"]),
            "resources": resources,
        },
        ["devices"],
    )


def _cloud_init() -> Schema:
    return obj({
        "networkData": string(),
        "networkDataBase64": string(),
        "networkDataSecretRef": local_object_reference(),
        "secretRef": local_object_reference(),
        "userData": string(),
        "userDataBase64": string(),
    })


def _volume() -> Schema:
    claim = obj({"claimName": string(), "hotpluggable": boolean(), "readOnly": boolean()}, ["claimName"])
    return obj(
        {
            "cloudInitConfigDrive": _cloud_init(),
            "cloudInitNoCloud": _cloud_init(),
            "configMap": obj({"name": string(default=""), "optional": boolean(), "volumeLabel": string()},
                             map_type="atomic"),
            "containerDisk": obj({"image": string(), "imagePullPolicy": string(),
                                  "imagePullSecret": string(), "path": string()}, ["image"]),
            "containerPath": obj({"path": string(max_length=4096), "readOnly": boolean(default=True)},
                                 ["path"]),
            "dataVolume": obj({"hotpluggable": boolean(), "name": string()}, ["name"]),
            "downwardAPI": preserve_unknown(),
            "downwardMetrics": empty_obj(),
            "emptyDisk": obj({"capacity": quantity()}, ["capacity"]),
            "ephemeral": obj({"persistentVolumeClaim": obj({"claimName": string(), "readOnly": boolean()},
                                                           ["claimName"])}),
            "hostDisk": obj({"capacity": quantity(), "path": string(), "shared": boolean(), "type": string()},
                            ["path", "type"]),
            "memoryDump": claim,
            "name": string(),
            "persistentVolumeClaim": claim,
            "secret": obj({"optional": boolean(), "secretName": string(), "volumeLabel": string()}),
            "serviceAccount": obj({"serviceAccountName": string()}),
            "sysprep": obj({"configMap": local_object_reference(), "secret": local_object_reference()}),
        },
        ["name"],
    )


def _network() -> Schema:
    return obj(
        {
            "multus": obj({"default": boolean(), "networkName": string()}, ["networkName"]),
            "name": string(),
            "pod": obj({"vmIPv6NetworkCIDR": string(), "vmNetworkCIDR": string()}),
            "resourceClaim": obj({"claimName": string(), "requestName": string()}),
        },
        ["name"],
    )


def vmi_spec() -> Schema:
    """VirtualMachineInstanceSpec (also the VM template's spec)."""
    return obj(
        {
            "accessCredentials": arr(preserve_unknown(), list_type="atomic", max_items=256),
            "affinity": affinity(),
            "architecture": string(),
            "dnsConfig": preserve_unknown(),
            "dnsPolicy": string(),
            "domain": _domain(),
            "evictionStrategy": string(),
            "hostname": string(),
            "livenessProbe": preserve_unknown(),
            "networks": arr(_network(), max_items=256),
            "nodeSelector": str_map(),
            "priorityClassName": string(),
            "readinessProbe": preserve_unknown(),
            "resourceClaims": arr(_keyed_item("name"), list_type="map", map_keys=["name"]),
            "schedulerName": string(),
            "serviceAccountName": string(),
            "startStrategy": string(),
            "subdomain": string(),
            "terminationGracePeriodSeconds": int64(),
            "tolerations": arr(toleration()),
            "topologySpreadConstraints": arr(_keyed_item("topologyKey", "whenUnsatisfiable"), list_type="map",
                                             map_keys=["topologyKey", "whenUnsatisfiable"]),
            "utilityVolumes": arr(_keyed_item("name"), list_type="map", map_keys=["name"], max_items=256),
            "volumes": arr(_volume(), max_items=256),
        },
        ["domain"],
    )


def _type_ref(*, status: bool) -> Schema:
    props: dict[str, Schema] = {
        "inferFromVolume": string(), "inferFromVolumeFailurePolicy": string(), "kind": string(),
        "name": string(),
    }
    if status:
        props["controllerRevisionRef"] = obj({"name": string()})
        return obj(props, nullable=True)
    props["revisionName"] = string()
    return obj(props)


def _vm_status() -> Schema:
    return obj({
        "changedBlockTracking": preserve_unknown(nullable=True),
        "conditions": arr(condition(probe_time=True)),
        "created": boolean(),
        "desiredGeneration": int64(),
        "instancetypeRef": _type_ref(status=True),
        "memoryDumpRequest": preserve_unknown(nullable=True),
        "observedGeneration": int64(),
        "preferenceRef": _type_ref(status=True),
        "printableStatus": string(default="Stopped"),
        "ready": boolean(),
        "restoreInProgress": string(),
        "runStrategy": string(),
        "snapshotInProgress": string(),
        "startFailure": obj({"consecutiveFailCount": integer(), "lastFailedVMIUID": string(),
                             "retryAfterTimestamp": date_time()}, nullable=True),
        "stateChangeRequests": arr(obj({"action": string(), "data": str_map(), "uid": string()},
                                       ["action"])),
        "volumeRequests": arr(preserve_unknown(), list_type="atomic"),
        "volumeSnapshotStatuses": arr(obj({"enabled": boolean(), "name": string(), "reason": string()},
                                          ["enabled", "name"])),
        "volumeUpdateState": preserve_unknown(),
    })


def virtual_machine_schema() -> Schema:
    dv_template = obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": embedded_metadata(),
            "spec": data_volume_spec(),
            "status": preserve_unknown(nullable=True),
        },
        ["spec"],
        nullable=True,
    )
    spec = obj(
        {
            "dataVolumeTemplates": arr(dv_template),
            "instancetype": _type_ref(status=False),
            "preference": _type_ref(status=False),
            "runStrategy": string(),
            "running": boolean("Deprecated in favour of runStrategy."),
            "template": obj({"metadata": embedded_metadata(), "spec": vmi_spec()}),
            "updateVolumesStrategy": string(),
        },
        ["template"],
    )
    return obj(
        {"apiVersion": string(), "kind": string(), "metadata": obj(), "spec": spec,
         "status": _vm_status()},
        ["spec"],
        description="VirtualMachine is a virtual machine whose disks may be DataVolumes it creates.",
    )


def virtual_machine_instance_schema() -> Schema:
    return obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": obj(),
            "spec": vmi_spec(),
            # Runtime state written by KubeVirt's handlers; pycdi only reads phase and conditions.
            "status": preserve_unknown(),
        },
        ["spec"],
        description="VirtualMachineInstance is a running virtual machine.",
    )


def _keyed_item(*keys: str) -> Schema:
    """A list-map item kept as sent but for its keys, which a structural schema must declare and require."""
    return obj({k: string() for k in keys}, required=list(keys), preserve_unknown=True)
