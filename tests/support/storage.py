"""Helpers for the storage tests: apply manifests, wait for claims and events, find a volume's host path."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import KUBECTL, Cluster
from tests.support.seeds import seed_documents

_SEEDS = [d.obj for d in seed_documents() if d.obj]


def seed_object(kind: str, name: str) -> dict[str, Any]:
    """A manifest from the seed documents, by kind and name (a fresh copy)."""
    for obj in _SEEDS:
        if obj.get("kind") == kind and (obj.get("metadata") or {}).get("name") == name:
            copied: dict[str, Any] = json.loads(json.dumps(obj))
            return copied
    raise KeyError(f"{kind} {name} not in the seeds")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def namespace(cluster: Cluster, prefix: str = "st") -> str:
    ns = unique(prefix)
    cluster.kubectl("create", "namespace", ns)
    return ns


def apply(cluster: Cluster, *objs: dict[str, Any], namespace: str = "", check: bool = True
          ) -> subprocess.CompletedProcess[str]:
    args = ["apply", "-f", "-"] + (["-n", namespace] if namespace else [])
    return cluster.kubectl(*args, input=yaml.safe_dump_all(objs), check=check)


def pvc(name: str, size: str = "16Mi", *, storage_class: str | None = None, mode: str | None = None,
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, **spec}
    if storage_class is not None:
        body["storageClassName"] = storage_class
    if mode is not None:
        body["volumeMode"] = mode
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": body}


def storage_class(name: str, provisioner: str = "kubevirt.io/hostpath-provisioner", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": provisioner, **fields}


def wait_phase(cluster: Cluster, ns: str, name: str, phase: str = "Bound", kind: str = "pvc") -> None:
    where = ["-n", ns] if ns else []
    cluster.kubectl("wait", *where, f"{kind}/{name}", f"--for=jsonpath={{.status.phase}}={phase}", "--timeout=60s")


def get(cluster: Cluster, kind: str, name: str, ns: str = "") -> dict[str, Any]:
    where = ["-n", ns] if ns else []
    obj: dict[str, Any] = cluster.kubectl_json("get", kind, name, *where)
    return obj


def volume_of(cluster: Cluster, ns: str, claim: str) -> dict[str, Any]:
    return get(cluster, "pv", get(cluster, "pvc", claim, ns)["spec"]["volumeName"])


def host_path(cluster: Cluster, ns: str, claim: str) -> Path:
    """Where a provisioned claim's bytes are: its directory, or its Block volume's backing file."""
    pv = volume_of(cluster, ns, claim)
    backing = (pv["metadata"].get("annotations") or {}).get("pycdi.io/block-backing")
    return Path(backing or pv["spec"]["hostPath"]["path"])


def _watch(cluster: Cluster, args: list[str], accept: Callable[[dict[str, Any]], bool], timeout: float
           ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Run `kubectl get ... --watch -o json` until an object passes `accept` (or the watch times out)."""
    cmd = [KUBECTL, "--kubeconfig", str(cluster.kubeconfig), "get", *args, "--watch", "-o", "json",
           f"--request-timeout={int(timeout)}s"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen: list[dict[str, Any]] = []
    try:
        assert proc.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in proc.stdout:
            buffer += line
            try:
                event, end = decoder.raw_decode(buffer.strip())
            except json.JSONDecodeError:
                continue
            buffer = buffer.strip()[end:]
            items = event.get("items", [event]) if isinstance(event, dict) else []
            for item in items:
                seen.append(item)
                if accept(item):
                    return dict(item), seen
    finally:
        proc.kill()  # the watch we started, by its own handle
        proc.wait()
    return None, seen


def wait_event(cluster: Cluster, ns: str, involved: str, reason: str, contains: str = "",
               timeout: float = 60.0) -> dict[str, Any]:
    """Watch events of one object until one with this reason (and message part) shows up."""
    found, seen = _watch(cluster, ["events", "-n", ns, "--field-selector",
                                   f"involvedObject.name={involved},reason={reason}"],
                         lambda e: contains in str(e.get("message", "")), timeout)
    if found is None:
        raise AssertionError(f"no {reason} event on {ns}/{involved} containing {contains!r}; "
                             f"saw {[e.get('message') for e in seen]}")
    return found


def wait_until(cluster: Cluster, kind: str, name: str, ns: str, accept: Callable[[dict[str, Any]], bool],
               timeout: float = 60.0) -> dict[str, Any]:
    """Watch one object until `accept` holds for it.

    Listed by field selector, not by name: `kubectl get NAME --watch` GETs the object, then watches from
    resourceVersion 0 and drops the first event as the copy of what it printed, so a change landing between the
    two is never shown (kubectl's own behaviour, on kube too). A list watches from the list's resourceVersion."""
    where = ["-n", ns] if ns else []
    found, seen = _watch(cluster, [kind, "--field-selector", f"metadata.name={name}", *where], accept, timeout)
    if found is None:
        raise AssertionError(f"{kind} {name} never reached the expected state; last seen {seen[-1:]}")
    return found


def node_name(cluster: Cluster) -> str:
    nodes = cluster.kubectl_json("get", "nodes")["items"]
    assert len(nodes) == 1
    return str(nodes[0]["metadata"]["name"])
