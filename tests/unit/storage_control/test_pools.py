"""Storage pool selection from classes and HostPathProvisioner CRs; node affinity and selectors of PVs."""

from __future__ import annotations

from pathlib import Path

from pycdi.cluster.control import volumeutil as vu
from pycdi.cluster.storage.pools import CSI_PROVISIONER, LEGACY_PROVISIONER, StoragePool, select_pool, truthy

DATA = Path("/data")


def hpp(name: str, created: str = "2024-01-01T00:00:00Z", **spec: object) -> dict[str, object]:
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": spec}


def sc(provisioner: str, **parameters: str) -> dict[str, object]:
    return {"provisioner": provisioner, "parameters": parameters}


def test_truthy_accepts_both_forms_of_use_naming_prefix() -> None:
    assert truthy(True) and truthy("true") and truthy("True")
    assert not truthy(False) and not truthy("false") and not truthy(None)


def test_builtin_pool_without_any_cr() -> None:
    assert select_pool(sc(LEGACY_PROVISIONER), [], DATA) == StoragePool("local", DATA / "volumes")
    assert select_pool(sc(CSI_PROVISIONER, storagePool="local"), [], DATA) == StoragePool("local", DATA / "volumes")
    assert select_pool(sc(CSI_PROVISIONER, storagePool="fast"), [], DATA) == "storage pool fast not found"


def test_named_pool_legacy_path_config_and_prefix() -> None:
    cr = hpp("hpp", storagePools=[{"name": "fast", "path": "/fast"}, {"name": "slow", "path": "/slow"}],
             pathConfig={"path": "/legacy", "useNamingPrefix": "true"})
    assert select_pool(sc(CSI_PROVISIONER, storagePool="slow"), [cr], DATA) == StoragePool(
        "slow", Path("/slow"), False, "hpp")
    assert select_pool(sc(CSI_PROVISIONER), [cr], DATA) == StoragePool("fast", Path("/fast"), False, "hpp")
    legacy = select_pool(sc(LEGACY_PROVISIONER), [cr], DATA)
    assert isinstance(legacy, StoragePool) and legacy.path == Path("/legacy") and legacy.use_naming_prefix
    assert legacy.volume_name("disk", "pvc-1") == "disk-pvc-1"
    assert StoragePool("x", Path("/x")).volume_name("disk", "pvc-1") == "pvc-1"


def test_a_cr_being_deleted_no_longer_provides_pools() -> None:
    cr = hpp("hpp", storagePools=[{"name": "fast", "path": "/fast"}])
    cr["metadata"]["deletionTimestamp"] = "2024-01-02T00:00:00Z"  # type: ignore[index]
    assert select_pool(sc(CSI_PROVISIONER), [cr], DATA) == StoragePool("local", DATA / "volumes")


def test_node_affinity_terms_are_ored_and_expressions_anded() -> None:
    labels = {"kubernetes.io/hostname": "node01", "zone": "a", "cpus": "8"}
    pv = {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["other"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]},
                              {"key": "cpus", "operator": "Gt", "values": ["4"]},
                              {"key": "gpu", "operator": "DoesNotExist"}]}]}}}}
    assert vu.node_affinity_matches(pv, "node01", labels)
    labels["gpu"] = "yes"
    assert not vu.node_affinity_matches(pv, "node01", labels)
    by_field = {"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node01"]}]}]}}}}
    assert vu.node_affinity_matches(by_field, "node01", {})
    assert not vu.node_affinity_matches(by_field, "node02", {})
    assert vu.node_affinity_matches({"spec": {}}, "anything", {})


def test_claim_selector_against_volume_labels() -> None:
    pv = {"metadata": {"labels": {"node": "node01", "tier": "gold"}}}
    assert vu.selector_matches({"spec": {"selector": {"matchLabels": {"node": "node01"}}}}, pv)
    assert not vu.selector_matches({"spec": {"selector": {"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["gold"]}]}}}, pv)
    assert vu.selector_matches({"spec": {}}, pv)
