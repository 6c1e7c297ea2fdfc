"""Printers for core and RBAC kinds: nodes, events, namespaces, configmaps, secrets, services..."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .age import age
from .printers import (
    Obj,
    Printer,
    age_col,
    as_dict,
    as_int,
    as_list,
    as_str,
    col,
    format_labels,
    meta,
    name_col,
    sub,
)


def _name(obj: Obj) -> str:
    return as_str(meta(obj).get("name"))


def _age(obj: Obj, now: datetime) -> str:
    return age(meta(obj).get("creationTimestamp"), now)


# -- nodes ------------------------------------------------------------------------------------------

def _node_roles(labels: Obj) -> str:
    roles: set[str] = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(status: Obj, type_: str) -> str:
    for addr in as_list(status.get("addresses")):
        if isinstance(addr, dict) and addr.get("type") == type_:
            return as_str(addr.get("address"))
    return "<none>"


def _node_cells(node: Obj, now: datetime) -> list[Any]:
    status, info = as_dict(node.get("status")), as_dict(sub(node, "status", "nodeInfo"))
    states: list[str] = []
    ready = [c for c in as_list(status.get("conditions")) if isinstance(c, dict) and c.get("type") == "Ready"]
    if ready:
        # The last entry of a type wins, as kube builds a map from the list.
        states.append("Ready" if ready[-1].get("status") == "True" else "NotReady")
    else:
        states.append("Unknown")
    if sub(node, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    return [
        _name(node), ",".join(states), _node_roles(as_dict(meta(node).get("labels"))), _age(node, now),
        as_str(info.get("kubeletVersion")),
        _node_address(status, "InternalIP"), _node_address(status, "ExternalIP"),
        as_str(info.get("osImage")) or "<unknown>", as_str(info.get("kernelVersion")) or "<unknown>",
        as_str(info.get("containerRuntimeVersion")) or "<unknown>",
    ]


NODES = Printer((
    name_col(), col("Status", "The status of the node"), col("Roles", "The roles of the node"), age_col(),
    col("Version", "Kubelet Version reported by the node."),
    col("Internal-IP", "List of addresses reachable to the node.", priority=1),
    col("External-IP", "List of addresses reachable to the node.", priority=1),
    col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
        priority=1),
    col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
        priority=1),
    col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API "
        "(e.g. containerd://1.4.2).", priority=1),
), _node_cells)


# -- events -----------------------------------------------------------------------------------------

def _core_event(event: Obj) -> Obj:
    """An events.k8s.io/v1 Event in core/v1 field names (kube prints both from the internal type)."""
    if "regarding" not in event and "note" not in event and "deprecatedSource" not in event:
        return event
    return {
        "metadata": meta(event), "involvedObject": as_dict(event.get("regarding")),
        "type": event.get("type"), "reason": event.get("reason"), "message": event.get("note"),
        "source": as_dict(event.get("deprecatedSource")),
        "firstTimestamp": event.get("deprecatedFirstTimestamp"),
        "lastTimestamp": event.get("deprecatedLastTimestamp"),
        "count": event.get("deprecatedCount"), "eventTime": event.get("eventTime"),
        "series": event.get("series"), "reportingComponent": event.get("reportingController"),
        "reportingInstance": event.get("reportingInstance"),
    }


def _event_cells(raw: Obj, now: datetime) -> list[Any]:
    event = _core_event(raw)
    first = age(event.get("firstTimestamp"), now)
    if not event.get("firstTimestamp"):
        first = age(event.get("eventTime"), now)
    last = age(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = as_int(event.get("count"))
    series = event.get("series")
    if isinstance(series, dict):
        last = age(series.get("lastObservedTime"), now)
        count = as_int(series.get("count"))
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = as_dict(event.get("involvedObject"))
    kind = as_str(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if as_str(involved.get("name")) else kind
    source = as_dict(event.get("source"))
    component = as_str(source.get("component")) or as_str(event.get("reportingComponent"))
    host = as_str(source.get("host")) or as_str(event.get("reportingInstance"))
    return [
        last, as_str(event.get("type")), as_str(event.get("reason")), target,
        as_str(involved.get("fieldPath")), f"{component}, {host}" if host else component,
        as_str(event.get("message")).strip(), first, count, _name(event),
    ]


EVENTS = Printer((
    col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    col("Reason", "This should be a short, machine understandable string that gives the reason for the "
        "transition into the object's current status."),
    col("Object", "The object that this event is about."),
    col("Subobject", "If referring to a piece of an object instead of an entire object, this string "
        "should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
        priority=1),
    col("Source", "The component reporting this event. Should be a short machine understandable string.",
        priority=1),
    col("Message", "A human-readable description of the status of this operation."),
    col("First Seen", "The time at which the event was first recorded. (Time of server receipt is in "
        "TypeMeta.)", priority=1),
    col("Count", "The number of times this event has occurred.", priority=1),
    col("Name", "Name must be unique within a namespace.", format_="name", priority=1),
), _event_cells)


# -- simple namespaced kinds ------------------------------------------------------------------------

NAMESPACES = Printer(
    (name_col(), col("Status", "The status of the namespace"), age_col()),
    lambda o, now: [_name(o), as_str(sub(o, "status", "phase")), _age(o, now)],
)

CONFIGMAPS = Printer(
    (name_col(), col("Data", "Data contains the configuration data."), age_col()),
    lambda o, now: [_name(o), len(as_dict(o.get("data"))) + len(as_dict(o.get("binaryData"))), _age(o, now)],
)


def _secret_cells(o: Obj, now: datetime) -> list[Any]:
    # stringData is merged into data on write; count a key once if a store kept both.
    keys = set(as_dict(o.get("data"))) | set(as_dict(o.get("stringData")))
    return [_name(o), as_str(o.get("type")) or "Opaque", len(keys), _age(o, now)]


SECRETS = Printer(
    (name_col(), col("Type", "Used to facilitate programmatic handling of secret data."),
     col("Data", "Data contains the secret data."), age_col()),
    _secret_cells,
)

SERVICEACCOUNTS = Printer(
    (name_col(), col("Secrets", "Secrets is a list of the secrets in the same namespace that pods running "
                     "using this ServiceAccount are allowed to use."), age_col()),
    lambda o, now: [_name(o), len(as_list(o.get("secrets"))), _age(o, now)],
)

LEASES = Printer(
    (name_col(), col("Holder", "holderIdentity contains the identity of the holder of a current lease."),
     age_col()),
    lambda o, now: [_name(o), as_str(sub(o, "spec", "holderIdentity")), _age(o, now)],
)


# -- services and endpoints -------------------------------------------------------------------------

def _lb_ingress(status: Obj, wide: bool) -> str:
    found = sorted({as_str(i.get("ip")) or as_str(i.get("hostname"))
                    for i in as_list(sub(status, "loadBalancer", "ingress")) if isinstance(i, dict)} - {""})
    text = ",".join(found)
    return text if wide or len(text) <= 16 else text[:13] + "..."


def _external_ip(svc: Obj, svc_type: str) -> str:
    spec = as_dict(svc.get("spec"))
    external = [as_str(i) for i in as_list(spec.get("externalIPs"))]
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        # The server prints the wide form: no clipping of long ingress lists.
        lb = _lb_ingress(as_dict(svc.get("status")), True)
        if external:
            return ",".join(([*lb.split(",")] if lb else []) + external)
        return lb or "<pending>"
    if svc_type == "ExternalName":
        return as_str(spec.get("externalName"))
    return "<unknown>"


def _service_cells(svc: Obj, now: datetime) -> list[Any]:
    spec = as_dict(svc.get("spec"))
    svc_type = as_str(spec.get("type")) or "ClusterIP"
    ips = [as_str(i) for i in as_list(spec.get("clusterIPs"))] or \
        ([as_str(spec["clusterIP"])] if as_str(spec.get("clusterIP")) else [])
    ports = []
    for p in as_list(spec.get("ports")):
        p = as_dict(p)
        proto = as_str(p.get("protocol")) or "TCP"
        node_port = as_int(p.get("nodePort"))
        port = as_int(p.get("port"))
        ports.append(f"{port}:{node_port}/{proto}" if node_port > 0 else f"{port}/{proto}")
    return [_name(svc), svc_type, ips[0] if ips else "<none>", _external_ip(svc, svc_type),
            ",".join(ports) or "<none>", _age(svc, now), format_labels(spec.get("selector"))]


SERVICES = Printer((
    name_col(),
    col("Type", "type determines how the Service is exposed."),
    col("Cluster-IP", "clusterIP is the IP address of the service and is usually assigned randomly."),
    col("External-IP", "externalIPs is a list of IP addresses for which nodes in the cluster will also "
        "accept traffic for this service."),
    col("Port(s)", "The list of ports that are exposed by this service."),
    age_col(),
    col("Selector", "Route service traffic to pods with label keys and values matching this selector.",
        priority=1),
), _service_cells)


def _format_endpoints(ep: Obj) -> str:
    subsets = as_list(ep.get("subsets"))
    if not subsets:
        return "<none>"
    shown: list[str] = []
    limit, count, more = 3, 0, False
    for subset in subsets:
        subset = as_dict(subset)
        addrs = [as_str(as_dict(a).get("ip")) for a in as_list(subset.get("addresses"))]
        ports = as_list(subset.get("ports")) or [None]
        for port in ports:
            count += len(addrs)
            for ip in addrs:
                if len(shown) == limit:
                    more = True
                    break
                if port is None:
                    shown.append(ip)
                else:
                    num = as_int(as_dict(port).get("port"))
                    shown.append(f"[{ip}]:{num}" if ":" in ip else f"{ip}:{num}")
    text = ",".join(shown)
    return f"{text} + {count - limit} more..." if more else text


ENDPOINTS = Printer(
    (name_col(), col("Endpoints", "The set of all endpoints is the union of all subsets."), age_col()),
    lambda o, now: [_name(o), _format_endpoints(o), _age(o, now)],
)


# -- RBAC bindings ----------------------------------------------------------------------------------

def _binding_cells(o: Obj, now: datetime) -> list[Any]:
    ref = as_dict(o.get("roleRef"))
    users, groups, sas = [], [], []
    for s in as_list(o.get("subjects")):
        s = as_dict(s)
        kind, name = as_str(s.get("kind")), as_str(s.get("name"))
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            sas.append(f"{as_str(s.get('namespace'))}/{name}")
    return [_name(o), f"{as_str(ref.get('kind'))}/{as_str(ref.get('name'))}", _age(o, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _binding_printer(what: str) -> Printer:
    return Printer((
        name_col(),
        col("Role", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global "
            "namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
        age_col(),
        col("Users", f"Users in the {what}", priority=1),
        col("Groups", f"Groups in the {what}", priority=1),
        col("ServiceAccounts", f"ServiceAccounts in the {what}", priority=1),
    ), _binding_cells)


ROLEBINDINGS = _binding_printer("roleBinding")
CLUSTERROLEBINDINGS = _binding_printer("clusterRoleBinding")
