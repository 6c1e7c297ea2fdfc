"""DataVolume validation, as upstream's `datavolume-validate.cdi.kubevirt.io` webhook (plus pycdi's own limits).

The rules, their order and their messages follow `pkg/apiserver/webhooks/datavolume-validate.go` and `util.go`:
the first failing rule answers, with one kube-style cause (`{"reason", "message", "field"}`; field paths use
upstream's Go field names, e.g. `spec.source.HTTP.url`). Where pycdi differs it is stricter, and says why:
- sources not implemented here (`gcs`, `imageio`, `vddk`, `snapshot`) are refused at creation; `upload` and
  `pvc` are accepted (their own issues add them);
- `http` and `s3` URLs must be http(s) with a host (upstream also lets `gs://` and host-less URLs through,
  which then fail in the importer);
- `contentType: archive` with an explicit `volumeMode: Block` is refused here rather than later by the
  controller, with the controller's message;
- secret and ConfigMap references must be valid object names (upstream only finds out in the importer).
Objects are plain JSON dicts as stored (schema-pruned and defaulted); nothing here needs a storage class.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

from pycdi.api import quantity
from pycdi.api.constants import (
    ANN_ALLOW_CLAIM_ADOPTION,
    ANN_POPULATED_FOR,
    FeatureGate,
)

from . import goparse

Cause = dict[str, str]
Obj = dict[str, Any]

INVALID = "FieldValueInvalid"
DUPLICATE = "FieldValueDuplicate"
MIB = 1024 * 1024
DNS1123_SUBDOMAIN_MAX = 253
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
UNSUPPORTED_MODE = ('Unsupported value: "{}": supported values: "ReadOnlyMany", "ReadWriteMany", '
                    '"ReadWriteOnce", "ReadWriteOncePod"')
#: DataVolumeSource members in Go's declaration order, with the Go field names upstream's paths use.
SOURCES = {"http": "HTTP", "s3": "S3", "gcs": "GCS", "registry": "Registry", "pvc": "PVC", "upload": "Upload",
           "blank": "Blank", "imageio": "Imageio", "vddk": "VDDK", "snapshot": "Snapshot"}
#: Sources pycdi does not implement (yet): refused at creation rather than left Pending forever.
NOT_IMPLEMENTED = ("gcs", "imageio", "vddk", "snapshot")
ANN_CREATED_FOR_DATA_VOLUME = "cdi.kubevirt.io/createdForDataVolume"
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class Lookup(Protocol):
    """Reads cluster objects: in-process store reads when embedded, the Kubernetes API on a real cluster.

    `resource` is `plural` for the core group and `plural.group` otherwise (`persistentvolumeclaims`,
    `cdiconfigs.cdi.kubevirt.io`); `namespace` is "" for cluster-scoped objects. None when absent.
    """

    async def get(self, resource: str, namespace: str, name: str) -> Obj | None: ...


class AdmissionError(Exception):
    """The webhook could not decide (an unreadable object, a failed lookup): upstream answers 400 with this text."""


def cause(message: str, field: str, reason: str = INVALID) -> Cause:
    return {"reason": reason, "message": message, "field": field}


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _present(value: Any) -> bool:
    """A Go pointer member is set: present in the JSON and not null."""
    return value is not None


# ---- update: the spec is immutable ----------------------------------------------------------------------

def _normal(value: Any, path: tuple[str, ...] = ()) -> Any:
    """A spec as Go's semantic equality sees it: nulls and empty lists/maps vanish, quantities compare by value."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            n = _normal(v, (*path, k))
            # Maps that are Go maps (not struct pointers) are equal when empty or absent.
            if n is None or n == [] or (n == {} and k in ("requests", "limits", "matchLabels")):
                continue
            if k == "finalCheckpoint" and n is False:
                continue  # a plain Go bool: false and absent are the same
            out[k] = n
        return out
    if isinstance(value, list):
        return [_normal(v, path) for v in value]
    if len(path) >= 2 and path[-2] in ("requests", "limits") and isinstance(value, (str, int, float)):
        try:
            return ("quantity", quantity.parse_quantity(value))
        except quantity.QuantityError:
            return value
    return value


def spec_update_causes(dv: Obj, old: Obj) -> list[Cause]:
    """Upstream: only `checkpoints`/`finalCheckpoint` of a multi-stage (vddk/imageio) import may change."""
    new_spec, old_spec = _normal(_dict(dv.get("spec"))), _normal(_dict(old.get("spec")))
    if new_spec == old_spec:
        return []
    source = _dict(new_spec.get("source"))
    if new_spec.get("checkpoints") and (_present(source.get("vddk")) or _present(source.get("imageio"))):
        strip = ("checkpoints", "finalCheckpoint")
        if {k: v for k, v in new_spec.items() if k not in strip} == \
                {k: v for k, v in old_spec.items() if k not in strip}:
            return []
    return [cause("Cannot update DataVolume Spec", "DataVolume.Spec", DUPLICATE)]


# ---- the spec -------------------------------------------------------------------------------------------

def _storage_size(spec: Obj, target: str, target_spec: Obj) -> Cause | None:
    field = f"spec.{target}.resources.requests.size"
    source = spec.get("source")
    is_clone = _present(spec.get("sourceRef")) or (
        isinstance(source, dict) and (_present(source.get("pvc")) or _present(source.get("snapshot"))))
    requests = _dict(_dict(target_spec.get("resources")).get("requests"))
    if "storage" in requests and requests["storage"] is not None:
        try:
            size = quantity.quantity_bytes(requests["storage"])
        except quantity.QuantityError as e:
            raise AdmissionError(str(e)) from None  # Go's decoder refuses the object before any rule runs
        if size <= 0:
            return cause(f"{target} size can't be equal or less than zero", field)
        if size < MIB:
            # KubeVirt refuses disks under 1MiB; upstream refuses such DataVolumes for consistency.
            return cause(f"{target} size should be at least 1MiB", field)
        return None
    if target == "PVC" or not is_clone:
        return cause(f"{target} size is missing", field)
    return None


def _typed_ref_causes(ref: Obj, field: str, what: str, *, namespaced: bool) -> list[Cause]:
    causes: list[Cause] = []
    if namespaced and ref.get("namespace"):
        causes.append(cause("Invalid value: DataSourceRef namespace not supported", f"{field}.namespace"))
    if not ref.get("name"):
        causes.append(cause(f"Required value: {what} name", f"{field}.name"))
    if not ref.get("kind"):
        causes.append(cause(f"Required value: {what} kind", f"{field}.kind"))
    if not ref.get("apiGroup") and ref.get("kind") != "PersistentVolumeClaim":
        causes.append(cause(f"Required value: {what} apiGroup when kind is not 'PersistentVolumeClaim'",
                            f"{field}.apiGroup"))
    return causes


def _external_population(spec: Obj, data_source: Obj | None, data_source_ref: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    if _present(spec.get("source")) or _present(spec.get("sourceRef")):
        causes.append(cause("External population is incompatible with Source and SourceRef", "spec.source"))
    if data_source is not None and data_source_ref is not None:
        # Upstream compares two different Go types, which never match; compare what they name instead.
        keys = ("apiGroup", "kind", "name")
        if any((data_source.get(k) or "") != (data_source_ref.get(k) or "") for k in keys) \
                or data_source_ref.get("namespace"):
            causes.append(cause("DataSourceRef and DataSource must match", ""))
    if data_source is not None:
        causes += _typed_ref_causes(data_source, "spec.dataSource", "DataSource", namespaced=False)
    if data_source_ref is not None:
        causes += _typed_ref_causes(data_source_ref, "spec.dataSourceRef", "DataSourceRef", namespaced=True)
    return causes


def _source_url(url: Any, kind: str, *, http_only: bool) -> list[Cause]:
    field = f"spec.source.{kind}.url"
    text = url if isinstance(url, str) else ""
    if not text:
        return [cause("spec.source source URL is empty", field)]
    try:
        parsed = goparse.parse(text, via_request=True)
    except goparse.URLError:
        return [cause(f"spec.source Invalid source URL: {text}", field)]
    allowed = ("http", "https") if http_only else ("http", "https", "gs")
    if parsed.scheme not in allowed:
        return [cause(f"spec.source Invalid source URL scheme: {text}", field)]
    if http_only and not parsed.host:
        return [cause(f"spec.source Invalid source URL: {text}", field)]
    return []


def _registry(registry: Obj, content_type: str) -> list[Cause]:
    if content_type not in ("", "kubevirt"):
        return [cause("ContentType must be kubevirt when Source is Registry", "spec.contentType")]
    url, stream = registry.get("url"), registry.get("imageStream")
    if _present(url) == _present(stream):
        return [cause("Source registry should have either URL or ImageStream", "spec.source.Registry")]
    if isinstance(url, str):
        try:
            scheme = goparse.parse(url).scheme
        except goparse.URLError:
            return [cause(f"Illegal registry source URL {url}", "spec.source.Registry.URL")]
        if scheme not in ("docker", "oci-archive"):
            return [cause(f"Illegal registry source URL scheme {url}", "spec.source.Registry.URL")]
    method = registry.get("pullMethod")
    if method is not None and method not in ("pod", "node"):
        return [cause(f'ImportMethod {method} is neither pod, node or ""', "spec.source.Registry.importMethod")]
    if stream is not None and stream == "":
        return [cause("Source registry ImageStream is not valid", "spec.source.Registry.importMethod")]
    if stream is not None and method != "node":
        return [cause("Source registry ImageStream is supported only with node pull import method",
                      "spec.source.Registry.importMethod")]
    return []


def _references(name: str, member: Obj) -> list[Cause]:
    """pycdi: Secret and ConfigMap names are object names (upstream finds a bad one only in the importer)."""
    refs: list[tuple[str, Any]] = [(k, member.get(k)) for k in ("secretRef", "certConfigMap")]
    refs += [(f"secretExtraHeaders[{i}]", v) for i, v in enumerate(member.get("secretExtraHeaders") or [])]
    for key, value in refs:
        if isinstance(value, str) and value and (len(value) > DNS1123_SUBDOMAIN_MAX
                                                  or not _DNS1123_SUBDOMAIN.match(value)):
            return [cause(f'Invalid value: "{value}": a lowercase RFC 1123 subdomain must consist of lower case '
                          "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                          "character", f"spec.source.{name}.{key}")]
    return []


def _source_causes(spec: Obj, source: Obj, content_type: str) -> list[Cause]:
    for key, go in SOURCES.items():
        member = source.get(key)
        if not _present(member):
            continue
        member = _dict(member)
        if key in ("http", "s3", "gcs"):
            found = _source_url(member.get("url"), go, http_only=key != "gcs")
            if key == "http" and member.get("checksum"):  # upstream reports both when both are wrong
                try:
                    goparse.parse_checksum(str(member["checksum"]))
                except ValueError as e:
                    found = [*found, cause(f"Invalid checksum format: {e}", "spec.source.HTTP.checksum")]
            if found:
                return found
        elif key == "blank" and content_type == "archive":
            return [cause("SourceType cannot be blank and the contentType be archive", "spec.contentType")]
        elif key == "registry" and (found := _registry(member, content_type)):
            return found
        elif key == "imageio":
            if not member.get("secretRef") or not member.get("diskId"):
                return [cause("spec.source.Imageio source Imageio is not valid", "spec.source.Imageio")]
            if not member.get("certConfigMap") and not member.get("insecureSkipVerify"):
                return [cause("spec.source.Imageio source Imageio requires CertConfigMap or InsecureSkipVerify",
                              "spec.source.Imageio")]
            if found := _source_url(member.get("url"), "ImageIO", http_only=False):
                return found
        elif key == "vddk":
            if not all(member.get(k) for k in ("secretRef", "uuid", "backingFile", "thumbprint")):
                return [cause("spec.source.VDDK source VDDK is not valid", "spec.source.VDDK")]
            if found := _source_url(member.get("url"), "VDDK", http_only=False):
                return found
        elif key in ("pvc", "snapshot") and (not member.get("namespace") or not member.get("name")):
            what = "PVC" if key == "pvc" else "snapshot"
            return [cause(f"spec.source.{go} source {what} is not valid", f"spec.source.{go}")]
        if found := _references(go, member):
            return found
    return []


def _target(spec: Obj) -> tuple[str, Obj] | list[Cause]:
    pvc, storage = spec.get("pvc"), spec.get("storage")
    if not _present(pvc) and not _present(storage):
        return [cause("Missing Data volume PVC", "spec.PVC")]
    if _present(pvc) and _present(storage):
        return [cause("Duplicate storage definition, both target storage and target pvc defined",
                      "spec.PVC.Storage")]
    return ("PVC", _dict(pvc)) if _present(pvc) else ("Storage", _dict(storage))


def _access_modes(target: str, target_spec: Obj) -> list[Cause]:
    modes = target_spec.get("accessModes") or []
    field = "spec.PVC.accessModes"  # upstream names the PVC path for the storage API too
    if target == "PVC":
        if not modes:
            return [cause("Required value: at least 1 access mode is required", field)]
        if len(modes) > 1:
            return [cause("PVC multiple accessModes", field)]
    for mode in modes:
        # The storage API may leave them to CDI or give several; the message names the offending mode.
        if mode not in ACCESS_MODES:
            return [cause(UNSUPPORTED_MODE.format(mode), field)]
    return []


def validate_spec(spec: Obj) -> list[Cause]:
    """`validateDataVolumeSpec`: the target, the size, then exactly one source and its own rules."""
    found = _target(spec)
    if isinstance(found, list):
        return found
    target, target_spec = found
    if size_cause := _storage_size(spec, target, target_spec):
        return [size_cause]
    class_name = target_spec.get("storageClassName")
    if isinstance(class_name, str) and len(class_name) > DNS1123_SUBDOMAIN_MAX:
        return [cause(f"Name cannot be longer than {DNS1123_SUBDOMAIN_MAX} characters", "")]
    if causes := _access_modes(target, target_spec):
        return causes
    data_source, data_source_ref = target_spec.get("dataSource"), target_spec.get("dataSourceRef")
    if _present(data_source) or _present(data_source_ref):
        return _external_population(spec, data_source if isinstance(data_source, dict) else None,
                                    data_source_ref if isinstance(data_source_ref, dict) else None)
    source, source_ref = spec.get("source"), spec.get("sourceRef")
    if _present(source) == _present(source_ref):
        return [cause("Data volume should have either Source or SourceRef, or be externally populated",
                      "spec.source")]
    if _present(source_ref):
        return _source_ref(_dict(source_ref))
    source = _dict(source)
    count = sum(1 for key in SOURCES if _present(source.get(key)))
    if count == 0:
        return [cause("Missing Data volume source", "spec.source")]
    if count > 1:
        return [cause("Multiple Data volume sources", "spec.source")]
    content_type = spec.get("contentType") or ""
    if content_type not in ("", "kubevirt", "archive"):
        return [cause("ContentType not one of: kubevirt, archive", "spec.contentType")]
    if content_type == "archive" and target_spec.get("volumeMode") == "Block":
        # Upstream's controller refuses this later (event ErrClaimNotValid); refusing it here is clearer.
        return [cause("ContentType Archive cannot have block volumeMode", "spec.contentType")]
    return _source_causes(spec, source, content_type)


def _source_ref(ref: Obj) -> list[Cause]:
    if not ref.get("kind"):
        return [cause("Missing sourceRef kind", "spec.sourceRef.Kind")]
    if ref["kind"] != "DataSource":
        return [cause(f"Unsupported sourceRef kind {ref['kind']}, currently only DataSource is supported",
                      "spec.sourceRef.Kind")]
    if not ref.get("name"):
        return [cause("Missing sourceRef name", "spec.sourceRef.Name")]
    return []


def not_implemented_causes(spec: Obj) -> list[Cause]:
    """pycdi: the sources it does not implement yet, named so the user knows it is not their manifest."""
    source = _dict(spec.get("source"))
    for key in NOT_IMPLEMENTED:
        if _present(source.get(key)):
            return [cause(f"Data volume source {key} is not implemented yet in pycdi "
                          "(supported: http, registry, s3, blank, upload, pvc)", f"spec.source.{SOURCES[key]}",
                          "FieldValueNotSupported")]
    return []


# ---- the whole webhook ----------------------------------------------------------------------------------

def _go_parse_bool(text: str) -> bool:
    """`strconv.ParseBool`, where anything it cannot parse counts as false (upstream ignores the error)."""
    return text in ("1", "t", "T", "true", "TRUE", "True")


async def _claim_adoption_allowed(pvc: Obj, dv: Obj, lookup: Lookup) -> bool:
    """`ClaimMayExistBeforeDataVolume`: populated for this DV, or adoption allowed by annotation or gate."""
    pvc_annotations: Mapping[str, Any] = _dict(_dict(pvc.get("metadata")).get("annotations"))
    dv_meta = _dict(dv.get("metadata"))
    if pvc_annotations.get(ANN_POPULATED_FOR) == dv_meta.get("name"):
        return True
    if dv_meta.get("uid") and pvc_annotations.get(ANN_CREATED_FOR_DATA_VOLUME) == dv_meta.get("uid"):
        return False
    dv_annotations = _dict(dv_meta.get("annotations"))
    if ANN_ALLOW_CLAIM_ADOPTION in dv_annotations:
        return _go_parse_bool(str(dv_annotations[ANN_ALLOW_CLAIM_ADOPTION]))
    config = await lookup.get("cdiconfigs.cdi.kubevirt.io", "", "config")
    gates = _dict((config or {}).get("spec")).get("featureGates") or []
    return FeatureGate.DATA_VOLUME_CLAIM_ADOPTION.value in gates


def _controller_kind(obj: Obj) -> str | None:
    for ref in _dict(obj.get("metadata")).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return str(ref.get("kind") or "")
    return None


async def validate_datavolume(dv: Obj, old: Obj | None, lookup: Lookup) -> list[Cause]:
    """Admit a DataVolume being created (`old` None) or updated: [] to allow, else the causes of the refusal.

    Raises AdmissionError when the webhook cannot decide (upstream's 400 answer).
    """
    meta = _dict(dv.get("metadata"))
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
    if old is not None and (causes := spec_update_causes(dv, old)):
        return causes
    if len(name) > DNS1123_SUBDOMAIN_MAX:
        return [cause(f"Name cannot be longer than {DNS1123_SUBDOMAIN_MAX} characters", "")]
    spec = _dict(dv.get("spec"))
    if old is None:
        try:
            pvc = await lookup.get("persistentvolumeclaims", namespace, name)
        except Exception as e:  # the webhook could not read the cluster: upstream answers 400 with the error
            raise AdmissionError(str(e)) from e
        if pvc is not None and not await _claim_adoption_allowed(pvc, dv, lookup) \
                and _controller_kind(pvc) != "DataVolume":
            # Someone else's claim: the DataVolume controller could neither populate nor own it.
            return [cause(f"Destination PVC {namespace}/{name} already exists", "DataVolume.Name", DUPLICATE)]
    if causes := validate_spec(spec):
        return causes
    if old is None:
        return not_implemented_causes(spec)
    return []


__all__ = ["AdmissionError", "Cause", "Lookup", "NOT_IMPLEMENTED", "not_implemented_causes", "spec_update_causes",
           "validate_datavolume", "validate_spec"]
