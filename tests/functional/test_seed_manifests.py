"""Every manifest in the seed documents, of a kind the API serves, is accepted by `kubectl apply -f`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster
from tests.support.seeds import SeedDoc, seed_documents

DOCS = seed_documents()
PARSED = [d for d in DOCS if d.obj is not None]

# Documents the parser cannot turn into an object, and why (see the report in tests/support/seeds.py):
# - 003-0: a PVC whose page capitalised `Namespace:` under metadata (kube would reject it as an unknown field);
# - 004-10: a CDIConfig printed `kubectl describe`-style (`API Version:`), so it has no apiVersion.
KNOWN_UNPARSEABLE = {"003_8952f439b08be2e9.txt#0", "004_ff8cbbf58ac77aea.txt#10"}


@pytest.fixture(scope="module")
def served(cluster: Cluster) -> dict[tuple[str, str], tuple[str, bool]]:
    """(apiVersion, kind) -> (resource name for kubectl, namespaced), from discovery."""
    versions = set(cluster.kubectl("api-versions").stdout.split())
    out: dict[tuple[str, str], tuple[str, bool]] = {}
    for line in cluster.kubectl("api-resources", "--no-headers").stdout.splitlines():
        cols = line.split()
        name, gv, namespaced, kind = cols[0], cols[-3], cols[-2], cols[-1]
        group = gv.rsplit("/", 1)[0] if "/" in gv else ""
        for version in versions:
            if (group and version.startswith(group + "/")) or (not group and version == "v1"):
                resource = f"{name}.{version.split('/')[-1]}.{group}" if group else name
                out[(version, kind)] = (resource, namespaced == "true")
    return out


def contains(applied: Any, stored: Any, path: str = "") -> list[str]:
    """Where `stored` lacks or differs from what `applied` asked for (defaults may add more)."""
    if isinstance(applied, dict):
        if not isinstance(stored, dict):
            return [f"{path}: {stored!r} is not an object"]
        return [m for k, v in applied.items() if v is not None for m in contains(v, stored.get(k), f"{path}.{k}")]
    if isinstance(applied, list):
        if not isinstance(stored, list) or len(stored) != len(applied):
            return [f"{path}: {stored!r} != {applied!r}"]
        return [m for i, (a, s) in enumerate(zip(applied, stored, strict=True)) for m in contains(a, s, f"{path}[{i}]")]
    return [] if applied == stored else [f"{path}: {stored!r} != {applied!r}"]


def ensure_namespace(cluster: Cluster, name: str) -> None:
    result = cluster.kubectl("create", "namespace", name, check=False)
    assert result.returncode == 0 or "AlreadyExists" in result.stderr, result.stderr


def test_seed_documents_found() -> None:
    if not DOCS:
        pytest.skip("no seed documents on this machine")
    assert len(PARSED) >= 20
    unparsed = {f"{d.seed}#{d.index}" for d in DOCS if d.obj is None}
    assert unparsed == KNOWN_UNPARSEABLE, [(d.seed, d.index, d.error, d.text[:120]) for d in DOCS if d.obj is None]


def test_flattened_manifests_are_renested() -> None:
    """The scraper's one-line manifests come back with their real nesting (spot checks on the hard ones)."""
    by_id = {d.id: d.obj for d in PARSED}
    if not by_id:
        pytest.skip("no seed documents on this machine")
    dv = by_id["000-0-DataVolume-img-cirros01"]
    assert dv is not None
    assert dv["spec"]["pvc"]["volumeMode"] == "Block"  # not swallowed by resources.requests
    assert dv["spec"]["source"] == {"http": {"url": "http://images.demo.com:10800/images/cirros-0.5.1-x86_64-disk.img"}}
    vm = by_id["001-3-VirtualMachine-vm-dv-clone"]
    assert vm is not None
    assert vm["metadata"] == {"labels": {"kubevirt.io/vm": "vm-dv-clone"}, "name": "vm-dv-clone"}
    disks = vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"]
    assert disks == [{"disk": {"bus": "virtio"}, "name": "root-disk"}]
    assert vm["spec"]["dataVolumeTemplates"][0]["spec"]["source"]["pvc"]["name"] == "my-favorite-vm-disk"
    binding = by_id["001-1-RoleBinding-allow-clone-to-user"]
    assert binding is not None
    assert binding["metadata"]["namespace"] == "source-namespace"  # from the `<Source namespace>` placeholder
    assert binding["roleRef"] == {"kind": "ClusterRole", "name": "datavolume-cloner",
                                  "apiGroup": "rbac.authorization.k8s.io"}


@pytest.mark.parametrize("doc", PARSED, ids=[d.id for d in PARSED])
def test_seed_manifest_is_accepted(cluster: Cluster, served: dict[tuple[str, str], tuple[str, bool]],
                                   doc: SeedDoc, tmp_path: Path) -> None:
    obj = doc.obj
    assert obj is not None
    key = (obj["apiVersion"], obj["kind"])
    if key not in served:
        pytest.skip(f"{obj['apiVersion']} {obj['kind']} is not served by this API")
    resource, namespaced = served[key]
    name = obj["metadata"]["name"]
    ns_args: list[str] = []
    if namespaced:
        ns = obj["metadata"].get("namespace")
        if ns:
            ensure_namespace(cluster, ns)
        else:
            ns = f"seed-{uuid.uuid4().hex[:8]}"
            ensure_namespace(cluster, ns)
        ns_args = ["-n", ns]
    source_ns = (((obj.get("spec") or {}).get("source") or {}).get("pvc") or {}).get("namespace")
    if obj["kind"] == "DataVolume" and source_ns:
        ensure_namespace(cluster, source_ns)  # clone authorization reads the source namespace
    if obj.get("kind") == "ObjectTransfer":
        # Admission wants the target namespace to exist (issue 7), as the seed's walkthrough has it.
        target_ns = ((obj.get("spec") or {}).get("target") or {}).get("namespace")
        if target_ns:
            ensure_namespace(cluster, target_ns)
    existed = cluster.kubectl("get", resource, name, *ns_args, check=False).returncode == 0
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump(obj, sort_keys=False))
    try:
        out = cluster.kubectl("apply", "-f", str(path), *ns_args).stdout.strip()
        if not existed:
            assert out.endswith(f"/{name} created"), out
        stored = json.loads(cluster.kubectl("get", "-f", str(path), *ns_args, "-o", "json").stdout)
        assert stored["kind"] == obj["kind"] and stored["apiVersion"] == obj["apiVersion"]
        assert stored["metadata"]["name"] == name
        applied = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        assert contains(applied, stored) == []
        assert contains(obj["metadata"].get("labels") or {}, stored["metadata"].get("labels") or {}) == []
        listed = cluster.kubectl("get", resource, *ns_args, "-o", "name").stdout.split()
        assert any(line.endswith(f"/{name}") for line in listed)
    finally:
        if not existed and not namespaced:
            # cluster-scoped names recur across seeds (local-block-pv10): leave the next test a clean slate
            cluster.kubectl("delete", "-f", str(path), "--wait=false", check=False)
