"""DataVolume admission rules: tables of valid and invalid DataVolumes with upstream's messages and fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycdi.cdiapi.datavolume_validation import (
    AdmissionError,
    spec_update_causes,
    validate_datavolume,
    validate_spec,
)

Obj = dict[str, Any]
RWO = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
STORAGE = {"resources": {"requests": {"storage": "1Gi"}}}
SHA256 = "sha256:" + "ab" * 32


class DictLookup:
    """A Lookup over a dict of objects keyed by (resource, namespace, name): the store the webhook would read."""

    def __init__(self, objects: dict[tuple[str, str, str], Obj] | None = None, fail: bool = False) -> None:
        self.objects = objects or {}
        self.fail = fail
        self.reads: list[tuple[str, str, str]] = []

    async def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        self.reads.append((resource, namespace, name))
        if self.fail:
            raise ConnectionError("connection refused")
        return self.objects.get((resource, namespace, name))


def dv(spec: Obj, name: str = "disk", annotations: dict[str, str] | None = None,
       api_version: str = "cdi.kubevirt.io/v1beta1") -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": "dv-uid"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": api_version, "kind": "DataVolume", "metadata": meta, "spec": spec}


def http(url: str = "http://example.com/disk.img", **more: Any) -> Obj:
    return {"http": {"url": url, **more}}


VALID: list[tuple[str, Obj]] = [
    ("http pvc", {"source": http(), "pvc": RWO}),
    ("https storage", {"source": http("https://example.com:8443/a/disk.qcow2?x=1"), "storage": STORAGE}),
    ("http checksum", {"source": http(checksum=SHA256), "storage": STORAGE}),
    ("http checksum upper", {"source": http(checksum="SHA256: " + "AB" * 32), "storage": STORAGE}),
    ("http refs", {"source": http(secretRef="creds", certConfigMap="my-ca", secretExtraHeaders=["h1"],
                                  extraHeaders=["X-A: b"]), "storage": STORAGE}),
    ("s3", {"source": {"s3": {"url": "http://127.0.0.1:9000/bucket/disk.img"}}, "storage": STORAGE}),
    ("registry docker", {"source": {"registry": {"url": "docker://quay.io/containerdisks/fedora:40"}},
                         "storage": STORAGE}),
    ("registry oci-archive", {"source": {"registry": {"url": "oci-archive:///tmp/image.tar"}}, "storage": STORAGE}),
    ("registry imageStream node", {"source": {"registry": {"imageStream": "fedora", "pullMethod": "node"}},
                                   "storage": STORAGE}),
    ("registry kubevirt", {"source": {"registry": {"url": "docker://r/i"}}, "contentType": "kubevirt",
                           "storage": STORAGE}),
    ("blank", {"source": {"blank": {}}, "pvc": RWO}),
    ("upload", {"source": {"upload": {}}, "pvc": RWO}),
    ("archive http", {"source": http(), "contentType": "archive", "storage": STORAGE}),
    ("archive filesystem", {"source": http(), "contentType": "archive",
                            "storage": {**STORAGE, "volumeMode": "Filesystem"}}),
    ("block kubevirt", {"source": http(), "pvc": {**RWO, "volumeMode": "Block"}}),
    ("pvc clone with size", {"source": {"pvc": {"namespace": "a", "name": "b"}}, "pvc": RWO}),
    ("pvc clone storage no size", {"source": {"pvc": {"namespace": "a", "name": "b"}}, "storage": {}}),
    ("sourceRef storage no size", {"sourceRef": {"kind": "DataSource", "name": "fedora"}, "storage": {}}),
    ("storage without access modes", {"source": {"blank": {}}, "storage": STORAGE}),
    ("storage several access modes", {"source": {"blank": {}},
                                      "storage": {**STORAGE, "accessModes": ["ReadWriteOnce", "ReadWriteMany"]}}),
    ("exactly 1Mi", {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1Mi"}}}}),
    ("decimal bytes", {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1048576"}}}}),
    ("unknown class", {"source": http(), "pvc": {**RWO, "storageClassName": "ceph-hdd-block"}}),
    ("external population", {"pvc": {**RWO, "dataSourceRef": {"apiGroup": "x.io", "kind": "Pop", "name": "p"}}}),
    ("external pvc dataSource", {"storage": {**STORAGE, "dataSource": {"kind": "PersistentVolumeClaim",
                                                                       "name": "src"}}}),
    ("external both matching", {"storage": {**STORAGE, "dataSource": {"apiGroup": "x.io", "kind": "P", "name": "p"},
                                            "dataSourceRef": {"apiGroup": "x.io", "kind": "P", "name": "p"}}}),
]


@pytest.mark.parametrize(("spec",), [(s,) for _, s in VALID], ids=[n for n, _ in VALID])
async def test_valid_datavolumes_are_admitted(spec: Obj) -> None:
    assert await validate_datavolume(dv(spec), None, DictLookup()) == []
    assert await validate_datavolume(dv(spec, api_version="cdi.kubevirt.io/v1alpha1"), None, DictLookup()) == []


INVALID: list[tuple[str, Obj, str, str]] = [
    # (id, spec, message, field)
    ("no target", {"source": {"blank": {}}}, "Missing Data volume PVC", "spec.PVC"),
    ("pvc and storage", {"source": {"blank": {}}, "pvc": RWO, "storage": STORAGE},
     "Duplicate storage definition, both target storage and target pvc defined", "spec.PVC.Storage"),
    ("pvc no size", {"source": {"blank": {}}, "pvc": {"accessModes": ["ReadWriteOnce"]}},
     "PVC size is missing", "spec.PVC.resources.requests.size"),
    ("storage no size", {"source": {"blank": {}}, "storage": {}}, "Storage size is missing",
     "spec.Storage.resources.requests.size"),
    ("pvc clone pvc api no size", {"source": {"pvc": {"namespace": "a", "name": "b"}},
                                   "pvc": {"accessModes": ["ReadWriteOnce"]}},
     "PVC size is missing", "spec.PVC.resources.requests.size"),
    ("zero size", {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "0"}}}},
     "Storage size can't be equal or less than zero", "spec.Storage.resources.requests.size"),
    ("negative size", {"source": {"blank": {}}, "pvc": {**RWO, "resources": {"requests": {"storage": "-1Gi"}}}},
     "PVC size can't be equal or less than zero", "spec.PVC.resources.requests.size"),
    ("under 1Mi", {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1048575"}}}},
     "Storage size should be at least 1MiB", "spec.Storage.resources.requests.size"),
    ("1M is under 1Mi", {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "1M"}}}},
     "Storage size should be at least 1MiB", "spec.Storage.resources.requests.size"),
    ("class name too long", {"source": {"blank": {}}, "storage": {**STORAGE, "storageClassName": "c" * 254}},
     "Name cannot be longer than 253 characters", ""),
    ("pvc no access mode", {"source": {"blank": {}}, "pvc": {"resources": RWO["resources"]}},
     "Required value: at least 1 access mode is required", "spec.PVC.accessModes"),
    ("pvc two access modes", {"source": {"blank": {}}, "pvc": {**RWO, "accessModes": ["ReadWriteOnce",
                                                                                    "ReadOnlyMany"]}},
     "PVC multiple accessModes", "spec.PVC.accessModes"),
    ("pvc bad access mode", {"source": {"blank": {}}, "pvc": {**RWO, "accessModes": ["ReadWriteSome"]}},
     'Unsupported value: "ReadWriteSome": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", '
     '"ReadWriteOncePod"', "spec.PVC.accessModes"),
    ("storage bad access mode", {"source": {"blank": {}}, "storage": {**STORAGE, "accessModes": ["ReadWriteOnce",
                                                                                               "Bogus"]}},
     'Unsupported value: "Bogus": supported values: "ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", '
     '"ReadWriteOncePod"', "spec.PVC.accessModes"),
    ("no source", {"pvc": RWO}, "Data volume should have either Source or SourceRef, or be externally populated",
     "spec.source"),
    ("source and sourceRef", {"source": {"blank": {}}, "sourceRef": {"kind": "DataSource", "name": "x"},
                              "storage": STORAGE},
     "Data volume should have either Source or SourceRef, or be externally populated", "spec.source"),
    ("empty source", {"source": {}, "pvc": RWO}, "Missing Data volume source", "spec.source"),
    ("null members", {"source": {"http": None, "blank": None}, "pvc": RWO}, "Missing Data volume source",
     "spec.source"),
    ("two sources", {"source": {"blank": {}, **http()}, "pvc": RWO}, "Multiple Data volume sources", "spec.source"),
    ("sourceRef kind", {"sourceRef": {"kind": "PersistentVolumeClaim", "name": "x"}, "storage": {}},
     "Unsupported sourceRef kind PersistentVolumeClaim, currently only DataSource is supported",
     "spec.sourceRef.Kind"),
    ("sourceRef no kind", {"sourceRef": {"kind": "", "name": "x"}, "storage": {}}, "Missing sourceRef kind",
     "spec.sourceRef.Kind"),
    ("sourceRef no name", {"sourceRef": {"kind": "DataSource", "name": ""}, "storage": {}}, "Missing sourceRef name",
     "spec.sourceRef.Name"),
    ("bad content type", {"source": http(), "contentType": "iso", "pvc": RWO},
     "ContentType not one of: kubevirt, archive", "spec.contentType"),
    ("archive block", {"source": http(), "contentType": "archive", "pvc": {**RWO, "volumeMode": "Block"}},
     "ContentType Archive cannot have block volumeMode", "spec.contentType"),
    ("archive blank", {"source": {"blank": {}}, "contentType": "archive", "pvc": RWO},
     "SourceType cannot be blank and the contentType be archive", "spec.contentType"),
    ("http empty url", {"source": http(""), "pvc": RWO}, "spec.source source URL is empty", "spec.source.HTTP.url"),
    ("http relative url", {"source": http("images/disk.img"), "pvc": RWO},
     "spec.source Invalid source URL: images/disk.img", "spec.source.HTTP.url"),
    ("http ftp", {"source": http("ftp://example.com/disk.img"), "pvc": RWO},
     "spec.source Invalid source URL scheme: ftp://example.com/disk.img", "spec.source.HTTP.url"),
    ("http gs", {"source": http("gs://bucket/disk.img"), "pvc": RWO},
     "spec.source Invalid source URL scheme: gs://bucket/disk.img", "spec.source.HTTP.url"),
    ("http no host", {"source": http("http:///disk.img"), "pvc": RWO},
     "spec.source Invalid source URL: http:///disk.img", "spec.source.HTTP.url"),
    ("http bad port", {"source": http("http://example.com:80x/d"), "pvc": RWO},
     "spec.source Invalid source URL: http://example.com:80x/d", "spec.source.HTTP.url"),
    ("http space in host", {"source": http("http://exa mple.com/d"), "pvc": RWO},
     "spec.source Invalid source URL: http://exa mple.com/d", "spec.source.HTTP.url"),
    ("http bad escape", {"source": http("http://example.com/%zz"), "pvc": RWO},
     "spec.source Invalid source URL: http://example.com/%zz", "spec.source.HTTP.url"),
    ("s3 bad url", {"source": {"s3": {"url": "bucket/disk"}}, "pvc": RWO},
     "spec.source Invalid source URL: bucket/disk", "spec.source.S3.url"),
    ("checksum no colon", {"source": http(checksum="abc"), "pvc": RWO},
     "Invalid checksum format: invalid checksum format: expected 'algorithm:hash', got 'abc'",
     "spec.source.HTTP.checksum"),
    ("checksum algorithm", {"source": http(checksum="crc32:00"), "pvc": RWO},
     "Invalid checksum format: unsupported hash algorithm 'crc32': supported algorithms are: md5, sha1, sha256, "
     "sha512", "spec.source.HTTP.checksum"),
    ("checksum length", {"source": http(checksum="md5:abcd"), "pvc": RWO},
     "Invalid checksum format: invalid md5 hash length: expected 32 hex characters, got 4",
     "spec.source.HTTP.checksum"),
    ("checksum hex", {"source": http(checksum="md5:" + "g" * 32), "pvc": RWO},
     "Invalid checksum format: checksum hash is not valid hexadecimal: encoding/hex: invalid byte: U+0067 'g'",
     "spec.source.HTTP.checksum"),
    ("checksum empty", {"source": http(checksum="sha1:"), "pvc": RWO},
     "Invalid checksum format: checksum hash value cannot be empty", "spec.source.HTTP.checksum"),
    ("registry archive", {"source": {"registry": {"url": "docker://r/i"}}, "contentType": "archive", "pvc": RWO},
     "ContentType must be kubevirt when Source is Registry", "spec.contentType"),
    ("registry neither", {"source": {"registry": {}}, "pvc": RWO},
     "Source registry should have either URL or ImageStream", "spec.source.Registry"),
    ("registry both", {"source": {"registry": {"url": "docker://r/i", "imageStream": "i", "pullMethod": "node"}},
                       "pvc": RWO}, "Source registry should have either URL or ImageStream", "spec.source.Registry"),
    ("registry http scheme", {"source": {"registry": {"url": "http://r/i"}}, "pvc": RWO},
     "Illegal registry source URL scheme http://r/i", "spec.source.Registry.URL"),
    ("registry bad url", {"source": {"registry": {"url": "docker://r:x/i"}}, "pvc": RWO},
     "Illegal registry source URL docker://r:x/i", "spec.source.Registry.URL"),
    ("registry pull method", {"source": {"registry": {"url": "docker://r/i", "pullMethod": "push"}}, "pvc": RWO},
     'ImportMethod push is neither pod, node or ""', "spec.source.Registry.importMethod"),
    ("registry imageStream pod", {"source": {"registry": {"imageStream": "i"}}, "pvc": RWO},
     "Source registry ImageStream is supported only with node pull import method",
     "spec.source.Registry.importMethod"),
    ("registry empty imageStream", {"source": {"registry": {"imageStream": "", "pullMethod": "node"}}, "pvc": RWO},
     "Source registry ImageStream is not valid", "spec.source.Registry.importMethod"),
    ("pvc source no namespace", {"source": {"pvc": {"namespace": "", "name": "b"}}, "pvc": RWO},
     "spec.source.PVC source PVC is not valid", "spec.source.PVC"),
    ("snapshot no name", {"source": {"snapshot": {"namespace": "a", "name": ""}}, "pvc": RWO},
     "spec.source.Snapshot source snapshot is not valid", "spec.source.Snapshot"),
    ("imageio incomplete", {"source": {"imageio": {"url": "https://e/x", "diskId": "1"}}, "pvc": RWO},
     "spec.source.Imageio source Imageio is not valid", "spec.source.Imageio"),
    ("imageio no ca", {"source": {"imageio": {"url": "https://e/x", "diskId": "1", "secretRef": "s"}}, "pvc": RWO},
     "spec.source.Imageio source Imageio requires CertConfigMap or InsecureSkipVerify", "spec.source.Imageio"),
    ("vddk incomplete", {"source": {"vddk": {"url": "https://e/x", "uuid": "u"}}, "pvc": RWO},
     "spec.source.VDDK source VDDK is not valid", "spec.source.VDDK"),
    ("gcs bad url", {"source": {"gcs": {"url": "bucket"}}, "pvc": RWO},
     "spec.source Invalid source URL: bucket", "spec.source.GCS.url"),
    ("bad secret name", {"source": http(secretRef="My_Secret"), "pvc": RWO},
     "Invalid value: \"My_Secret\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
     "characters, '-' or '.', and must start and end with an alphanumeric character", "spec.source.HTTP.secretRef"),
    ("bad configmap name", {"source": {"registry": {"url": "docker://r/i", "certConfigMap": "-ca"}}, "pvc": RWO},
     "Invalid value: \"-ca\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
     "characters, '-' or '.', and must start and end with an alphanumeric character",
     "spec.source.Registry.certConfigMap"),
    ("bad header secret name", {"source": http(secretExtraHeaders=["ok", "Not OK"]), "pvc": RWO},
     "Invalid value: \"Not OK\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
     "characters, '-' or '.', and must start and end with an alphanumeric character",
     "spec.source.HTTP.secretExtraHeaders[1]"),
    ("external with source", {"source": {"blank": {}},
                              "pvc": {**RWO, "dataSourceRef": {"apiGroup": "x.io", "kind": "P", "name": "p"}}},
     "External population is incompatible with Source and SourceRef", "spec.source"),
    ("dataSourceRef namespace", {"storage": {**STORAGE, "dataSourceRef": {"apiGroup": "x.io", "kind": "P",
                                                                          "name": "p", "namespace": "other"}}},
     "Invalid value: DataSourceRef namespace not supported", "spec.dataSourceRef.namespace"),
    ("dataSource no apiGroup", {"storage": {**STORAGE, "dataSource": {"kind": "VolumeSnapshot", "name": "s"}}},
     "Required value: DataSource apiGroup when kind is not 'PersistentVolumeClaim'", "spec.dataSource.apiGroup"),
    ("dataSource mismatch", {"storage": {**STORAGE, "dataSource": {"apiGroup": "x.io", "kind": "P", "name": "a"},
                                         "dataSourceRef": {"apiGroup": "x.io", "kind": "P", "name": "b"}}},
     "DataSourceRef and DataSource must match", ""),
]


@pytest.mark.parametrize(("spec", "message", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
async def test_invalid_datavolumes_are_refused(spec: Obj, message: str, field: str) -> None:
    causes = await validate_datavolume(dv(spec), None, DictLookup())
    assert causes and causes[0]["message"] == message and causes[0]["field"] == field, causes
    assert all(c["reason"].startswith("FieldValue") for c in causes)
    # v1alpha1 objects go through the same rules
    alpha = await validate_datavolume(dv(spec, api_version="cdi.kubevirt.io/v1alpha1"), None, DictLookup())
    assert alpha == causes


async def test_http_url_and_checksum_are_both_reported() -> None:
    causes = validate_spec({"source": http("nope", checksum="md5:1"), "pvc": RWO})
    assert [c["field"] for c in causes] == ["spec.source.HTTP.url", "spec.source.HTTP.checksum"]


@pytest.mark.parametrize("source", ["gcs", "imageio", "vddk", "snapshot"])
async def test_unimplemented_sources_are_refused_at_creation(source: str) -> None:
    members = {
        "gcs": {"url": "gs://bucket/disk.img"},
        "imageio": {"url": "https://e/x", "diskId": "1", "secretRef": "s", "insecureSkipVerify": True},
        "vddk": {"url": "https://e/x", "uuid": "u", "backingFile": "[ds] vm/disk.vmdk", "thumbprint": "t",
                 "secretRef": "s"},
        "snapshot": {"namespace": "a", "name": "snap"},
    }
    spec = {"source": {source: members[source]}, "storage": STORAGE}
    assert validate_spec(spec) == []  # upstream would accept it
    causes = await validate_datavolume(dv(spec), None, DictLookup())
    assert len(causes) == 1
    assert causes[0]["message"].startswith(f"Data volume source {source} is not implemented yet")
    assert causes[0]["reason"] == "FieldValueNotSupported"


async def test_quantity_the_decoder_would_refuse_is_an_admission_error() -> None:
    spec = {"source": {"blank": {}}, "storage": {"resources": {"requests": {"storage": "lots"}}}}
    with pytest.raises(AdmissionError, match="quantities must match the regular expression"):
        await validate_datavolume(dv(spec), None, DictLookup())


async def test_name_longer_than_253_is_refused() -> None:
    causes = await validate_datavolume(dv({"source": {"blank": {}}, "pvc": RWO}, name="d" * 254), None,
                                       DictLookup())
    assert causes == [{"reason": "FieldValueInvalid", "message": "Name cannot be longer than 253 characters",
                       "field": ""}]


# ---- updates ---------------------------------------------------------------------------------------------

IMMUTABLE = [{"reason": "FieldValueDuplicate", "message": "Cannot update DataVolume Spec",
              "field": "DataVolume.Spec"}]


def test_spec_is_immutable() -> None:
    old = dv({"source": http(), "pvc": RWO})
    new = copy.deepcopy(old)
    new["spec"]["pvc"]["resources"]["requests"]["storage"] = "2Gi"
    assert spec_update_causes(new, old) == IMMUTABLE
    new = copy.deepcopy(old)
    new["spec"]["source"]["http"]["url"] = "http://example.com/other.img"
    assert spec_update_causes(new, old) == IMMUTABLE
    new = copy.deepcopy(old)
    new["spec"]["preallocation"] = False  # a *bool: false is not absent
    assert spec_update_causes(new, old) == IMMUTABLE


def test_semantically_equal_spec_is_not_a_change() -> None:
    old = dv({"source": http(), "pvc": RWO})
    new = copy.deepcopy(old)
    new["spec"]["pvc"]["resources"]["requests"]["storage"] = "1024Mi"  # the same quantity
    new["spec"]["pvc"]["selector"] = None
    new["spec"]["checkpoints"] = []
    new["spec"]["finalCheckpoint"] = False
    new["metadata"]["labels"] = {"changed": "metadata"}
    assert spec_update_causes(new, old) == []


def test_checkpoints_may_change_for_multistage_imports_only() -> None:
    vddk = {"url": "https://e/x", "uuid": "u", "backingFile": "f", "thumbprint": "t", "secretRef": "s"}
    old = dv({"source": {"vddk": vddk}, "pvc": RWO, "checkpoints": [{"previous": "", "current": "c1"}]})
    new = copy.deepcopy(old)
    new["spec"]["checkpoints"].append({"previous": "c1", "current": "c2"})
    new["spec"]["finalCheckpoint"] = True
    assert spec_update_causes(new, old) == []
    new["spec"]["pvc"]["resources"]["requests"]["storage"] = "2Gi"
    assert spec_update_causes(new, old) == IMMUTABLE
    old_http = dv({"source": http(), "pvc": RWO, "checkpoints": [{"previous": "", "current": "c1"}]})
    new_http = copy.deepcopy(old_http)
    new_http["spec"]["finalCheckpoint"] = True
    assert spec_update_causes(new_http, old_http) == IMMUTABLE


async def test_update_of_an_unimplemented_source_is_not_refused_for_it() -> None:
    """A DataVolume stored before (e.g. resumed state) can still have its metadata (finalizers) changed."""
    spec = {"source": {"gcs": {"url": "gs://b/d"}}, "storage": STORAGE}
    old = dv(spec)
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = []
    assert await validate_datavolume(new, old, DictLookup()) == []


async def test_update_revalidates_the_spec_and_skips_the_pvc_check() -> None:
    lookup = DictLookup({("persistentvolumeclaims", "ns", "disk"): {"metadata": {"name": "disk"}}})
    old = dv({"source": {}, "pvc": RWO})
    causes = await validate_datavolume(copy.deepcopy(old), old, lookup)
    assert causes[0]["message"] == "Missing Data volume source"
    assert lookup.reads == []


# ---- an existing PVC of the same name -------------------------------------------------------------------

def pvc(annotations: dict[str, str] | None = None, owner_kind: str | None = None, controller: bool = True) -> Obj:
    meta: Obj = {"name": "disk", "namespace": "ns", "annotations": annotations or {}}
    if owner_kind:
        meta["ownerReferences"] = [{"apiVersion": "x/v1", "kind": owner_kind, "name": "o", "uid": "u",
                                    "controller": controller}]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": {}}


EXISTS = [{"reason": "FieldValueDuplicate", "message": "Destination PVC ns/disk already exists",
           "field": "DataVolume.Name"}]
CONFIG_KEY = ("cdiconfigs.cdi.kubevirt.io", "", "config")


@pytest.mark.parametrize(("claim", "dv_annotations", "config", "expected"), [
    (pvc(), None, None, EXISTS),
    (pvc(owner_kind="VirtualMachine"), None, None, EXISTS),
    (pvc(owner_kind="DataVolume", controller=False), None, None, EXISTS),
    (pvc(owner_kind="DataVolume"), None, None, []),
    (pvc({"cdi.kubevirt.io/storage.populatedFor": "disk"}), None, None, []),
    (pvc({"cdi.kubevirt.io/storage.populatedFor": "other"}), None, None, EXISTS),
    (pvc(), {"cdi.kubevirt.io/allowClaimAdoption": "true"}, None, []),
    (pvc(), {"cdi.kubevirt.io/allowClaimAdoption": "1"}, None, []),
    (pvc(), {"cdi.kubevirt.io/allowClaimAdoption": "false"}, {"featureGates": ["DataVolumeClaimAdoption"]}, EXISTS),
    (pvc(), {"cdi.kubevirt.io/allowClaimAdoption": "yes"}, None, EXISTS),  # ParseBool refuses "yes"
    (pvc(), None, {"featureGates": ["DataVolumeClaimAdoption"]}, []),
    (pvc(), None, {"featureGates": ["HonorWaitForFirstConsumer"]}, EXISTS),
    (pvc({"cdi.kubevirt.io/createdForDataVolume": "dv-uid"}), {"cdi.kubevirt.io/allowClaimAdoption": "true"},
     None, EXISTS),
], ids=["plain", "other-owner", "not-controller", "dv-owned", "populated-for", "populated-for-other",
        "annotation", "annotation-1", "annotation-false-beats-gate", "annotation-yes", "gate", "other-gate",
        "created-for-this-dv"])
async def test_existing_claim(claim: Obj, dv_annotations: dict[str, str] | None, config: Obj | None,
                              expected: list[dict[str, str]]) -> None:
    objects = {("persistentvolumeclaims", "ns", "disk"): claim}
    if config is not None:
        objects[CONFIG_KEY] = {"metadata": {"name": "config"}, "spec": config}
    causes = await validate_datavolume(dv({"source": {"blank": {}}, "pvc": RWO}, annotations=dv_annotations),
                                       None, DictLookup(objects))
    assert causes == expected


async def test_existing_claim_is_checked_before_the_spec() -> None:
    lookup = DictLookup({("persistentvolumeclaims", "ns", "disk"): pvc()})
    assert await validate_datavolume(dv({"source": {}, "pvc": RWO}), None, lookup) == EXISTS


async def test_failed_lookup_is_an_admission_error() -> None:
    with pytest.raises(AdmissionError, match="connection refused"):
        await validate_datavolume(dv({"source": {"blank": {}}, "pvc": RWO}), None, DictLookup(fail=True))
