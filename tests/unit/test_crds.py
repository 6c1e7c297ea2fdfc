"""The CRDs pycdi installs: structural, consistently named, and accepting the manifests users copy from docs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from pycdi.api import groups as g
from pycdi.api.constants import DataVolumePhase
from pycdi.api.crds import all_crds, crd_by_kind, schema_for
from tests.support.seeds import SEED_DIR

SEEDS = SEED_DIR
OUR_KINDS = {
    g.DATA_VOLUME, g.OBJECT_TRANSFER, g.CDI_CONFIG, g.STORAGE_PROFILE, g.DATA_SOURCE, g.DATA_IMPORT_CRON,
    g.CDI, g.VOLUME_SNAPSHOT, g.VOLUME_SNAPSHOT_CONTENT, g.VOLUME_SNAPSHOT_CLASS, g.VIRTUAL_MACHINE,
    g.VIRTUAL_MACHINE_INSTANCE, g.HOST_PATH_PROVISIONER,
}
SCHEMA_KEYS = {
    "description", "type", "properties", "required", "items", "additionalProperties", "enum", "pattern",
    "format", "minLength", "maxLength", "minimum", "maximum", "maxItems", "minItems", "default", "nullable",
    "anyOf", "oneOf", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
    "x-kubernetes-embedded-resource",
}


# --- a structural-schema checker (the rules kube-apiserver applies to CRD schemas) -----------------

def structural_errors(node: dict[str, Any], path: str = "", *, root: bool = False) -> list[str]:
    errs: list[str] = []
    unknown = set(node) - SCHEMA_KEYS
    if unknown:
        errs.append(f"{path}: unsupported keys {sorted(unknown)}")
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    if int_or_string:
        if "type" in node:
            errs.append(f"{path}: int-or-string must not set type")
        if node.get("anyOf") not in (None, [{"type": "integer"}, {"type": "string"}]):
            errs.append(f"{path}: int-or-string anyOf must be integer|string")
    elif "type" not in node and not preserve:
        errs.append(f"{path}: no type")
    elif "anyOf" in node:
        errs.append(f"{path}: anyOf outside int-or-string")
    for branch in node.get("oneOf", []):
        if set(branch) - {"required"} or not set(branch.get("required", [])) <= set(node.get("properties", {})):
            errs.append(f"{path}: oneOf branches may only require declared properties")
    if "properties" in node and "additionalProperties" in node:
        errs.append(f"{path}: properties together with additionalProperties")
    if not set(node.get("required", [])) <= set(node.get("properties", {})):
        errs.append(f"{path}: required names an undeclared property")
    if node.get("type") == "array" and "items" not in node:
        errs.append(f"{path}: array without items")
    if node.get("type") not in (None, "object") and ("properties" in node or "additionalProperties" in node):
        errs.append(f"{path}: properties on a non-object")
    if "enum" in node and node.get("type") == "string" and not all(isinstance(e, str) for e in node["enum"]):
        errs.append(f"{path}: non-string enum value")
    if node.get("x-kubernetes-list-type") == "map" and not node.get("x-kubernetes-list-map-keys"):
        errs.append(f"{path}: map list without keys")
    for name, child in node.get("properties", {}).items():
        if root and name == "metadata":
            # Only name/generateName may be constrained at the root; nothing else.
            if child != {"type": "object"} and set(child.get("properties", {})) - {"name", "generateName"}:
                errs.append(f"{path}.metadata: root metadata may only constrain name/generateName")
            continue
        errs += structural_errors(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        errs += structural_errors(node["items"], f"{path}[]")
    if "additionalProperties" in node:
        if not isinstance(node["additionalProperties"], dict):
            errs.append(f"{path}: additionalProperties must be a schema")
        else:
            errs += structural_errors(node["additionalProperties"], f"{path}{{*}}")
    return errs


# --- a strict validator: types, required, enum, pattern, and no unknown fields ---------------------

def validate(value: Any, node: dict[str, Any], path: str = "", *, root: bool = True) -> list[str]:
    errs: list[str] = []
    if value is None:
        return [] if node.get("nullable") else [f"{path}: null"]
    if node.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{path}: want int or string, got {value!r}"]
        if isinstance(value, str) and "pattern" in node and not re.search(node["pattern"], value):
            errs.append(f"{path}: {value!r} does not match {node['pattern']}")
        return errs
    kind = node.get("type")
    if kind == "object" or (kind is None and isinstance(value, dict)):
        if not isinstance(value, dict):
            return [f"{path}: want object, got {value!r}"]
        errs += [f"{path}.{r}: required" for r in node.get("required", []) if r not in value]
        one_of = node.get("oneOf")
        if one_of and sum(all(r in value for r in b["required"]) for b in one_of) != 1:
            errs.append(f"{path}: must set exactly one of {[b['required'] for b in one_of]}")
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, child in value.items():
            if root and key == "metadata":
                continue
            if key in props:
                errs += validate(child, props[key], f"{path}.{key}", root=False)
            elif isinstance(extra, dict):
                errs += validate(child, extra, f"{path}.{key}", root=False)
            elif not node.get("x-kubernetes-preserve-unknown-fields"):
                errs.append(f"{path}.{key}: unknown field")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: want array, got {value!r}"]
        if "maxItems" in node and len(value) > node["maxItems"]:
            errs.append(f"{path}: more than {node['maxItems']} items")
        for i, item in enumerate(value):
            errs += validate(item, node["items"], f"{path}[{i}]", root=False)
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: want string, got {value!r}"]
        if "enum" in node and value not in node["enum"]:
            errs.append(f"{path}: {value!r} not in {node['enum']}")
        if "pattern" in node and not re.search(node["pattern"], value):
            errs.append(f"{path}: {value!r} does not match {node['pattern']}")
        if len(value) < node.get("minLength", 0):
            errs.append(f"{path}: shorter than {node['minLength']}")
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: want integer, got {value!r}"]
    elif kind == "boolean":
        if not isinstance(value, bool):
            return [f"{path}: want boolean, got {value!r}"]
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: want number, got {value!r}"]
    return errs


def validate_manifest(doc: dict[str, Any]) -> list[str]:
    return validate(doc, schema_for(doc["apiVersion"], doc["kind"]))


# --- extracting the YAML that the seed documents embed in prose ------------------------------------

START = re.compile(r"^(\s*)(apiVersion|kind|API Version):\s*\S")
YAMLISH = re.compile(r"^\s*(#|- |-$|\.\.\.$|[\w.\-/<>\"]+\s*:(\s|$))")
FLATTENED = re.compile(r"apiVersion: (\S+) kind: (\w+)")
CALLOUT_AFTER_VALUE = re.compile(r"^(\s*(?:-\s+)?[^\s#][^#]*?:\s+\S.*?)\s+\d{1,2}$")
CALLOUT_AFTER_ITEM = re.compile(r"^(\s*-\s+[^:]*?\S)\s+\d{1,2}$")
PLACEHOLDER = re.compile(r"<([^<>\s]+)>")


def clean_line(line: str) -> str:
    """Undo documentation artefacts: callout numbers after values and `<placeholder>` brackets."""
    line = line.replace("API Version:", "apiVersion:", 1)
    line = CALLOUT_AFTER_VALUE.sub(r"\1", line)
    line = CALLOUT_AFTER_ITEM.sub(r"\1", line)
    return PLACEHOLDER.sub(r"\1", line)


def extract_blocks(text: str) -> list[tuple[int, str]]:
    """Multi-line YAML blocks: (first line number, cleaned text)."""
    lines = text.splitlines()
    blocks: list[tuple[int, str]] = []
    i = 0
    while i < len(lines):
        m = START.match(lines[i])
        if not m or FLATTENED.search(lines[i]):
            i += 1
            continue
        indent, start, body = len(m.group(1)), i, [clean_line(lines[i][len(m.group(1)):])]
        i += 1  # the start line always belongs to the block
        while i < len(lines):
            line = lines[i]
            if line.strip():
                lead = len(line) - len(line.lstrip())
                if lead < indent or re.fullmatch(r"\s*\d+\s*", line) or not YAMLISH.match(line):
                    break
                if lead == indent and line.strip().startswith("$"):
                    break
            if line.strip() != "...":
                body.append(clean_line(line[indent:] if len(line) >= indent else line.strip()))
            i += 1
        blocks.append((start + 1, "\n".join(body)))
    return blocks


def seed_documents() -> tuple[list[tuple[str, dict[str, Any]]], list[str], list[tuple[str, str]]]:
    """(documents with their origin, blocks that do not parse, flattened one-line manifests)."""
    docs: list[tuple[str, dict[str, Any]]] = []
    broken: list[str] = []
    flattened: list[tuple[str, str]] = []
    for seed in sorted(SEEDS.glob("*.txt")):
        text = seed.read_text()
        for lineno, block in extract_blocks(text):
            origin = f"{seed.name}:{lineno}"
            try:
                loaded = [d for d in yaml.safe_load_all(block) if d]
            except yaml.YAMLError as exc:
                broken.append(f"{origin}: {exc}\n{block}")
                continue
            docs += [(origin, d) for d in loaded if isinstance(d, dict)]
        for lineno, line in enumerate(text.splitlines(), 1):
            flattened += [(f"{seed.name}:{lineno}", kind) for _, kind in FLATTENED.findall(line)]
    return docs, broken, flattened


# Hand-restored copies of the seed manifests whose line breaks were lost (one line of prose each).
# Same keys and values as the seed text; only the indentation is restored.
RESTORED = {
    "000:8:DataVolume": """
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: img-cirros01, namespace: default}
spec:
  source:
    http: {url: "http://images.demo.com:10800/images/cirros-0.5.1-x86_64-disk.img"}
  pvc:
    storageClassName: "ceph-hdd-block"
    accessModes: [ReadWriteMany]
    resources: {requests: {storage: 1Gi}}
    volumeMode: Block
""",
    "000:8:ObjectTransfer": """
apiVersion: cdi.kubevirt.io/v1beta1
kind: ObjectTransfer
metadata: {name: t1}
spec:
  source: {kind: DataVolume, namespace: default, name: img-cirros01}
  target: {namespace: test, name: img-cirros01}
""",
    "000:11:ObjectTransfer": """
apiVersion: cdi.kubevirt.io/v1beta1
kind: ObjectTransfer
metadata: {name: t2}
spec:
  source: {kind: PersistentVolumeClaim, namespace: default, name: pvc-image-cirros01}
  target: {namespace: test, name: pvc-image-cirros01}
""",
    "000:14:DataVolume": """
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: img-cirros03, namespace: default}
spec:
  source:
    http: {url: "http://images.demo.com:10800/images/cirros-0.5.1-x86_64-disk.img"}
  pvc:
    storageClassName: "ceph-hdd-block"
    accessModes: [ReadWriteMany]
    resources: {requests: {storage: 1Gi}}
    volumeMode: Block
""",
    "000:14:ObjectTransfer": """
apiVersion: cdi.kubevirt.io/v1beta1
kind: ObjectTransfer
metadata: {name: t3}
spec:
  source: {kind: PersistentVolumeClaim, namespace: default, name: img-cirros03}
  target: {namespace: test, name: img-cirros03}
""",
    "001:74:DataVolume": """
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: cloner-datavolume}
spec:
  source:
    pvc: {namespace: "source-namespace", name: "my-favorite-vm-disk"}
  pvc:
    accessModes: [ReadWriteOnce]
    resources: {requests: {storage: 2Gi}}
""",
    "001:138:VirtualMachine": """
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  labels: {kubevirt.io/vm: vm-dv-clone}
  name: vm-dv-clone
spec:
  running: false
  template:
    metadata:
      labels: {kubevirt.io/vm: vm-dv-clone}
    spec:
      domain:
        devices:
          disks:
          - disk: {bus: virtio}
            name: root-disk
        resources: {requests: {memory: 64M}}
      volumes:
      - dataVolume: {name: favorite-clone}
        name: root-disk
  dataVolumeTemplates:
  - metadata: {name: favorite-clone}
    spec:
      storage:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 2Gi}}
      source:
        pvc: {namespace: "source-namespace", name: "my-favorite-vm-disk"}
""",
    "001:221:DataVolume": """
apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: cloner-datavolume}
spec:
  source:
    pvc: {namespace: "source-namespace", name: "my-favorite-vm-disk"}
  pvc:
    accessModes: [ReadWriteOnce]
    resources: {requests: {storage: 2Gi}}
    volumeMode: Block
""",
}

_SEEDS_PRESENT = SEEDS.is_dir() and any(SEEDS.glob("*.txt"))
needs_seeds = pytest.mark.skipif(not _SEEDS_PRESENT, reason="seed documents not available")


# --- the tests ----------------------------------------------------------------------------------

CRDS = all_crds()
BY_NAME = {c["metadata"]["name"]: c for c in CRDS}
VERSIONS = [(c["metadata"]["name"], v) for c in CRDS for v in c["spec"]["versions"]]


def test_every_expected_crd_is_there_in_a_fixed_order() -> None:
    assert [c["spec"]["names"]["kind"] for c in CRDS] == [
        "DataVolume", "ObjectTransfer", "CDIConfig", "StorageProfile", "DataSource", "DataImportCron", "CDI",
        "VolumeCloneSource", "VolumeSnapshot", "VolumeSnapshotContent", "VolumeSnapshotClass", "VirtualMachine",
        "VirtualMachineInstance", "HostPathProvisioner",
    ]
    assert json.dumps(all_crds(), sort_keys=True) == json.dumps(CRDS, sort_keys=True)


@pytest.mark.parametrize(("name", "version"), VERSIONS, ids=[f"{n}/{v['name']}" for n, v in VERSIONS])
def test_schema_is_structural(name: str, version: dict[str, Any]) -> None:
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["type"] == "object"
    assert structural_errors(schema, root=True) == []


@pytest.mark.parametrize("crd", CRDS, ids=list(BY_NAME))
def test_names_and_versions_are_consistent(crd: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    spec, names = crd["spec"], crd["spec"]["names"]
    assert crd["metadata"]["name"] == f"{names['plural']}.{spec['group']}"
    assert names["singular"] == names["kind"].lower()
    assert names["listKind"] == names["kind"] + "List"
    assert spec["scope"] in ("Namespaced", "Cluster")
    versions = spec["versions"]
    assert len({v["name"] for v in versions}) == len(versions)
    assert sum(v["storage"] for v in versions) == 1
    assert all(v["served"] for v in versions)
    for v in versions:
        for col in v.get("additionalPrinterColumns", []):
            assert col["type"] in ("string", "integer", "number", "boolean", "date")
            assert col["jsonPath"].startswith(".")


def test_upstream_names_scopes_and_columns() -> None:
    def names(kind_group: str) -> tuple[Any, ...]:
        c = BY_NAME[kind_group]
        n = c["spec"]["names"]
        return (c["spec"]["scope"], n.get("shortNames", []), n.get("categories", []),
                [v["name"] for v in c["spec"]["versions"] if v["storage"]][0])

    assert names("datavolumes.cdi.kubevirt.io") == ("Namespaced", ["dv", "dvs"], ["all"], "v1beta1")
    assert names("objecttransfers.cdi.kubevirt.io") == ("Cluster", ["ot", "ots"], [], "v1beta1")
    assert names("cdiconfigs.cdi.kubevirt.io")[0] == "Cluster"
    assert names("storageprofiles.cdi.kubevirt.io")[0] == "Cluster"
    assert names("cdis.cdi.kubevirt.io")[0] == "Cluster"
    assert names("volumesnapshots.snapshot.storage.k8s.io") == ("Namespaced", ["vs"], [], "v1")
    assert names("volumesnapshotcontents.snapshot.storage.k8s.io") == ("Cluster", ["vsc", "vscs"], [], "v1")
    assert names("volumesnapshotclasses.snapshot.storage.k8s.io") == (
        "Cluster", ["vsclass", "vsclasses"], [], "v1")
    assert names("virtualmachines.kubevirt.io") == ("Namespaced", ["vm", "vms"], ["all"], "v1")
    assert names("virtualmachineinstances.kubevirt.io") == ("Namespaced", ["vmi", "vmis"], ["all"], "v1")
    assert names("hostpathprovisioners.hostpathprovisioner.kubevirt.io") == ("Cluster", [], [], "v1beta1")
    dv = crd_by_kind(g.CDI_GROUP, g.DATA_VOLUME)
    assert {v["name"] for v in dv["spec"]["versions"]} == {"v1alpha1", "v1beta1"}
    for v in dv["spec"]["versions"]:
        assert [c["name"] for c in v["additionalPrinterColumns"]] == ["Phase", "Progress", "Restarts", "Age"]
    ot = crd_by_kind(g.CDI_GROUP, g.OBJECT_TRANSFER)["spec"]["versions"][0]
    assert [c["name"] for c in ot["additionalPrinterColumns"]] == ["Age", "Phase"]
    assert "deprecated" not in ot  # pycdi keeps ObjectTransfer supported (upstream deprecated it)


def test_status_subresource_exactly_where_upstream_has_one() -> None:
    with_status = {c["spec"]["names"]["kind"] for c in CRDS
                   if all("status" in v.get("subresources", {}) for v in c["spec"]["versions"])}
    assert with_status == {"DataVolume", "ObjectTransfer", "StorageProfile", "VolumeSnapshot",
                           "VolumeSnapshotContent", "VirtualMachine"}


def test_data_volume_phases_are_upstreams() -> None:
    assert len(DataVolumePhase) == 23
    assert DataVolumePhase("ImportInProgress") is DataVolumePhase.IMPORT_IN_PROGRESS
    assert str(DataVolumePhase.UNSET) == ""
    assert {str(p) for p in DataVolumePhase} >= {"Pending", "PVCBound", "WaitForFirstConsumer",
                                                  "PendingPopulation", "Succeeded", "Failed", "Paused"}


def test_manifests_render_without_yaml_aliases() -> None:
    text = yaml.safe_dump_all(all_crds())
    assert "&id" not in text and "*id" not in text


def test_validator_rejects_what_the_server_must_reject() -> None:
    good = yaml.safe_load(RESTORED["001:74:DataVolume"])
    assert validate_manifest(good) == []
    bad = json.loads(json.dumps(good))
    bad["spec"]["source"]["http"] = {"urll": "x"}
    bad["spec"]["pvc"]["resources"]["requests"]["storage"] = "two gigs"
    bad["spec"]["contentType"] = "qcow2"
    bad["spec"]["preallocation"] = "yes"
    errs = validate_manifest(bad)
    assert ".spec.source.http.url: required" in errs
    assert ".spec.source.http.urll: unknown field" in errs
    assert any(e.startswith(".spec.pvc.resources.requests.storage:") for e in errs)
    assert any(e.startswith(".spec.contentType:") for e in errs)
    assert any(e.startswith(".spec.preallocation:") for e in errs)
    source: dict[str, Any] = {"persistentVolumeClaimName": "a", "volumeSnapshotContentName": "b"}
    vs = {"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "spec": {"source": source}}
    assert validate_manifest(vs) != []
    source.pop("volumeSnapshotContentName")
    assert validate_manifest(vs) == []


def test_preserved_subtrees_and_embedded_metadata_accept_anything() -> None:
    vm = yaml.safe_load(RESTORED["001:138:VirtualMachine"])
    vm["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {"anything": [{"goes": 1}]}}
    vm["spec"]["template"]["spec"]["domain"]["cpu"] = {"cores": 2, "numa": {"guestMappingPassthrough": {}}}
    vm["spec"]["dataVolumeTemplates"][0]["metadata"]["annotations"] = {"a": "b"}
    assert validate_manifest(vm) == []
    vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"][0]["dsik"] = {}
    assert validate_manifest(vm) == [".spec.template.spec.domain.devices.disks[0].dsik: unknown field"]


def test_hpp_v1alpha1_keeps_its_string_naming_prefix() -> None:
    hpp = {"apiVersion": "hostpathprovisioner.kubevirt.io/v1alpha1", "kind": "HostPathProvisioner",
           "spec": {"pathConfig": {"path": "/var/hpvolumes", "useNamingPrefix": "false"}}}
    assert validate_manifest(hpp) == []
    hpp["apiVersion"] = "hostpathprovisioner.kubevirt.io/v1beta1"
    assert validate_manifest(hpp) == [".spec.pathConfig.useNamingPrefix: want boolean, got 'false'"]


@needs_seeds
def test_every_seed_manifest_of_our_kinds_validates() -> None:
    docs, broken, _ = seed_documents()
    # Blocks that do not parse (003: a PVC whose line breaks were dropped) must not be one of ours.
    assert not [b for b in broken if any(re.search(rf"kind: {k}\b", b) for k in OUR_KINDS)], broken
    ours = [(origin, d) for origin, d in docs if d.get("kind") in OUR_KINDS]
    checked = sorted(f"{origin} {d['kind']} {d['apiVersion']}" for origin, d in ours)
    assert len(checked) >= 6, checked
    failures = {origin: validate_manifest(d) for origin, d in ours if validate_manifest(d)}
    assert failures == {}


@needs_seeds
def test_every_flattened_seed_manifest_of_our_kinds_has_a_restored_copy_that_validates() -> None:
    _, _, flattened = seed_documents()
    ours = {f"{origin.split('_')[0]}:{origin.split(':')[1]}:{kind}"
            for origin, kind in flattened if kind in OUR_KINDS}
    assert ours == set(RESTORED)
    for key, text in RESTORED.items():
        doc = yaml.safe_load(text)
        assert doc["kind"] == key.rsplit(":", 1)[1]
        assert validate_manifest(doc) == [], key
