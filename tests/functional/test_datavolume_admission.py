"""DataVolume admission on `pycdi up`, through the real kubectl: refusals shaped as kube-apiserver returns a
webhook's (`admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request: ...`), and the
manifests users apply (the seeds' DataVolumes included) still accepted."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import yaml

from tests.support.cluster import Cluster
from tests.support.seeds import seed_documents

DENIED = 'admission webhook "datavolume-validate.cdi.kubevirt.io" denied the request: '
RWO = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
SEED_DVS = [d for d in seed_documents() if d.obj is not None and d.obj.get("kind") == "DataVolume"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = unique("dvadm")
    cluster.kubectl("create", "namespace", name)
    return name


def datavolume(name: str, spec: dict[str, Any], version: str = "v1beta1",
               annotations: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    return json.dumps({"apiVersion": f"cdi.kubevirt.io/{version}", "kind": "DataVolume", "metadata": meta,
                       "spec": spec})


def create(cluster: Cluster, ns: str, body: str, *extra: str, check: bool = False) -> Any:
    return cluster.kubectl("create", "-n", ns, "-f", "-", *extra, input=body, check=check)


@pytest.mark.parametrize("version", ["v1beta1", "v1alpha1"])
def test_refusal_as_kubectl_prints_it(cluster: Cluster, ns: str, version: str) -> None:
    result = create(cluster, ns, datavolume("nosource", {"source": {}, "pvc": RWO}, version))
    assert result.returncode != 0
    # upstream's message starts with a space, hence two after the colon
    expected = f'Error from server: error when creating "STDIN": {DENIED} Missing Data volume source'
    assert result.stderr.strip() == expected
    assert cluster.kubectl("get", "dv", "nosource", "-n", ns, check=False).returncode != 0


def test_refusal_status_on_the_wire(cluster: Cluster, ns: str) -> None:
    body = json.loads(datavolume("two", {"source": {"blank": {}, "upload": {}}, "pvc": RWO}))
    for query in ("", "?dryRun=All"):
        status, payload, _ = cluster.request(
            "POST", f"/apis/cdi.kubevirt.io/v1beta1/namespaces/{ns}/datavolumes{query}", body)
        assert status == 422
        assert payload == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": DENIED + " Multiple Data volume sources", "code": 422,
            "details": {"causes": [{"reason": "FieldValueInvalid", "message": "Multiple Data volume sources",
                                    "field": "spec.source"}]},
        }


@pytest.mark.parametrize(("spec", "message"), [
    ({"source": {"http": {"url": "http://e/d.img"}}, "pvc": RWO, "storage": RWO},
     "Duplicate storage definition, both target storage and target pvc defined"),
    ({"source": {"http": {"url": "http://e/d.img"}}, "storage": {}}, "Storage size is missing"),
    ({"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1000Ki"}}}},
     "Storage size should be at least 1MiB"),
    ({"source": {"http": {"url": "ftp://e/d.img"}}, "pvc": RWO},
     "spec.source Invalid source URL scheme: ftp://e/d.img"),
    ({"source": {"registry": {"url": "https://quay.io/x"}}, "pvc": RWO},
     "Illegal registry source URL scheme https://quay.io/x"),
    ({"source": {"registry": {"imageStream": "fedora"}}, "pvc": RWO},
     "Source registry ImageStream is supported only with node pull import method"),
    ({"source": {"http": {"url": "http://e/d.tar"}}, "contentType": "archive",
      "pvc": {**RWO, "volumeMode": "Block"}}, "ContentType Archive cannot have block volumeMode"),
    ({"source": {"pvc": {"namespace": "", "name": "x"}}, "pvc": RWO}, "spec.source.PVC source PVC is not valid"),
    ({"source": {"blank": {}}, "storage": {**RWO, "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "x",
                                                                   "namespace": "other"}}},
     "External population is incompatible with Source and SourceRef "
     "Invalid value: DataSourceRef namespace not supported"),
    ({"source": {"gcs": {"url": "gs://bucket/disk.img"}}, "storage": RWO},
     "Data volume source gcs is not implemented yet in pycdi (supported: http, registry, s3, blank, upload, pvc)"),
    ({"source": {"snapshot": {"namespace": "a", "name": "snap"}}, "storage": RWO},
     "Data volume source snapshot is not implemented yet in pycdi (supported: http, registry, s3, blank, upload, "
     "pvc)"),
], ids=["duplicate", "size-missing", "under-1Mi", "http-scheme", "registry-scheme", "imagestream-pod",
        "archive-block", "pvc-source", "dataSourceRef-namespace", "gcs", "snapshot"])
def test_rules(cluster: Cluster, ns: str, spec: dict[str, Any], message: str) -> None:
    result = create(cluster, ns, datavolume(unique("dv"), spec))
    assert result.returncode != 0
    assert result.stderr.strip().endswith(f"{DENIED} {message}"), result.stderr


def source_namespace_exists(cluster: Cluster, spec: dict[str, Any]) -> None:
    """Clone authorization reads the source namespace (upstream answers 400 when it does not exist)."""
    source_ns = ((spec.get("source") or {}).get("pvc") or {}).get("namespace")
    if source_ns:
        result = cluster.kubectl("create", "namespace", source_ns, check=False)
        assert result.returncode == 0 or "AlreadyExists" in result.stderr, result.stderr


@pytest.mark.parametrize("spec", [
    {"source": {"http": {"url": "http://127.0.0.1:1/disk.img"}}, "storage": {**RWO, "storageClassName": "nope"}},
    {"source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}},
     "storage": {"resources": {"requests": {"storage": "1Mi"}}}},
    {"source": {"upload": {}}, "pvc": RWO},
    {"source": {"pvc": {"namespace": "elsewhere", "name": "golden"}}, "storage": {}},
    {"source": {"s3": {"url": "https://s3.example.com/bucket/disk.img"}, }, "contentType": "archive", "pvc": RWO},
], ids=["unknown-class", "registry-1Mi", "upload", "clone-no-size", "s3-archive"])
def test_valid_datavolumes_are_created(cluster: Cluster, ns: str, spec: dict[str, Any]) -> None:
    source_namespace_exists(cluster, spec)
    name = unique("ok")
    result = create(cluster, ns, datavolume(name, spec), check=True)
    assert result.stdout.strip() == f"datavolume.cdi.kubevirt.io/{name} created"


def test_spec_is_immutable_but_metadata_and_status_are_not(cluster: Cluster, ns: str) -> None:
    create(cluster, ns, datavolume("fixed", {"source": {"blank": {}}, "pvc": RWO}), check=True)
    result = cluster.kubectl("patch", "dv", "fixed", "-n", ns, "--type", "merge",
                             "-p", '{"spec":{"pvc":{"resources":{"requests":{"storage":"2Gi"}}}}}', check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == f"Error from server: {DENIED} Cannot update DataVolume Spec"
    # the same quantity written differently is no change, as Go's semantic equality says
    cluster.kubectl("patch", "dv", "fixed", "-n", ns, "--type", "merge",
                    "-p", '{"spec":{"pvc":{"resources":{"requests":{"storage":"1024Mi"}}}}}')
    cluster.kubectl("label", "dv", "fixed", "-n", ns, "team=storage")
    cluster.kubectl("annotate", "dv", "fixed", "-n", ns, "note=x")
    cluster.kubectl("patch", "dv", "fixed", "-n", ns, "--subresource=status", "--type", "merge",
                    "-p", '{"status":{"progress":"12.34%"}}')
    dv = cluster.kubectl_json("get", "dv", "fixed", "-n", ns)
    assert dv["metadata"]["labels"] == {"team": "storage"}
    assert dv["spec"]["pvc"]["resources"]["requests"]["storage"] in ("1Gi", "1024Mi")
    # kubectl apply of the original manifest (no spec change) stays accepted
    body = datavolume("fixed", {"source": {"blank": {}}, "pvc": RWO})
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=body)


def test_existing_claim_of_the_same_name(cluster: Cluster, ns: str) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "taken"}, "spec": RWO}
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(claim))
    spec = {"source": {"blank": {}}, "pvc": RWO}
    result = create(cluster, ns, datavolume("taken", spec))
    assert result.returncode != 0
    assert result.stderr.strip().endswith(f"{DENIED} Destination PVC {ns}/taken already exists"), result.stderr
    # allowed when the DataVolume asks to adopt the claim
    adopt = datavolume("taken", spec, annotations={"cdi.kubevirt.io/allowClaimAdoption": "true"})
    create(cluster, ns, adopt, "--dry-run=server", check=True)
    # or when the claim says it was populated for this DataVolume
    cluster.kubectl("annotate", "pvc", "taken", "-n", ns, "cdi.kubevirt.io/storage.populatedFor=taken")
    create(cluster, ns, datavolume("taken", spec), check=True)


def test_claim_adoption_feature_gate(cluster: Cluster, ns: str) -> None:
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "gated"}, "spec": RWO}
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(claim))
    spec = {"source": {"blank": {}}, "pvc": RWO}
    assert create(cluster, ns, datavolume("gated", spec), "--dry-run=server").returncode != 0
    cluster.kubectl("patch", "cdiconfig", "config", "--type", "merge",
                    "-p", '{"spec":{"featureGates":["DataVolumeClaimAdoption"]}}')
    try:
        create(cluster, ns, datavolume("gated", spec), "--dry-run=server", check=True)
        refused = datavolume("gated", spec, annotations={"cdi.kubevirt.io/allowClaimAdoption": "false"})
        assert create(cluster, ns, refused, "--dry-run=server").returncode != 0
    finally:
        cluster.kubectl("patch", "cdiconfig", "config", "--type", "json",
                        "-p", '[{"op":"remove","path":"/spec/featureGates"}]')


@pytest.mark.parametrize("doc", SEED_DVS, ids=[d.id for d in SEED_DVS])
def test_seed_datavolumes_are_admitted(cluster: Cluster, ns: str, doc: Any) -> None:
    """Every DataVolume of the seed documents is accepted as written (their storage classes need not exist)."""
    obj = json.loads(json.dumps(doc.obj))
    obj["metadata"].pop("namespace", None)
    source_namespace_exists(cluster, obj["spec"])
    out = cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(obj)).stdout.strip()
    assert out == f"datavolume.cdi.kubevirt.io/{obj['metadata']['name']} created"
    # and applying it again (no change) is accepted too
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(obj))


def test_seed_datavolumes_found() -> None:
    if not SEED_DVS:
        pytest.skip("no seed documents on this machine")
    assert {d.obj["apiVersion"] for d in SEED_DVS if d.obj} == {"cdi.kubevirt.io/v1beta1",
                                                                 "cdi.kubevirt.io/v1alpha1"}
