"""The importer pod, its environment and the scratch claim built from a PVC's annotations."""

from __future__ import annotations

from typing import Any

from pycdi.controllers.importpod import podspec

ANN = "cdi.kubevirt.io/storage."
CONFIG = {"status": {
    "filesystemOverhead": {"global": "0.06", "storageClass": {"local": "0.1", "fast": "0.2"}},
    "scratchSpaceStorageClass": "", "defaultPodResourceRequirements": {"limits": {"cpu": "750m"}},
    "importProxy": {"HTTPProxy": "http://proxy:3128", "HTTPSProxy": "", "noProxy": "", "trustedCAProxy": ""}}}


def pvc(annotations: dict[str, str], mode: str = "Filesystem", size: str = "1Gi",
        owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "disk", "namespace": "ns", "uid": "pvc-uid", "annotations": annotations,
                         "labels": {"team": "a"}, "ownerReferences": owners or []},
            "spec": {"volumeMode": mode, "storageClassName": "local", "resources": {"requests": {"storage": size}}}}


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_filesystem_http_pod() -> None:
    claim = pvc({f"{ANN}import.source": "http", f"{ANN}import.endpoint": "https://h/x.qcow2",
                 f"{ANN}import.secretName": "s", f"{ANN}import.certConfigMap": "ca",
                 f"{ANN}import.extraHeaders.1": "B: 2", f"{ANN}import.extraHeaders.0": "A: 1",
                 f"{ANN}import.secretExtraHeaders.0": "hdr", f"{ANN}import.checksum": "sha256:ab",
                 f"{ANN}pod.priorityclassname": "high", "k8s.v1.cni.cncf.io/networks": "net1"},
                owners=[{"uid": "dv-uid", "kind": "DataVolume", "name": "disk", "controller": True}])
    pod = podspec.importer_pod(claim, CONFIG, podspec.PodOptions(image="img:1", metrics_port=9000))
    assert pod["metadata"]["name"] == "importer-disk"
    assert pod["metadata"]["labels"]["app"] == "containerized-data-importer"
    assert pod["metadata"]["labels"]["team"] == "a"  # the PVC's labels travel, as upstream
    assert pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "net1"
    assert pod["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                   "name": "disk", "uid": "pvc-uid", "controller": True,
                                                   "blockOwnerDeletion": True}]
    spec = pod["spec"]
    assert spec["restartPolicy"] == "OnFailure" and spec["priorityClassName"] == "high"
    container = spec["containers"][0]
    assert container["image"] == "img:1" and container["command"] == ["pycdi", "importer"]
    assert container["resources"] == {"limits": {"cpu": "750m"}}
    env = env_of(pod)
    assert env["IMPORTER_ENDPOINT"] == "https://h/x.qcow2"
    assert env["IMPORTER_CONTENTTYPE"] == "kubevirt"
    assert env["IMPORTER_IMAGE_SIZE"] == "1Gi"
    assert env["OWNER_UID"] == "dv-uid"  # the single owner, as upstream's getOwnerUID
    assert env["FILESYSTEM_OVERHEAD"] == "0.1"
    assert env["IMPORTER_CHECKSUM"] == "sha256:ab"
    assert env["IMPORTER_CERT_DIR"] == "/certs"
    assert env["IMPORTER_EXTRA_HEADER_0"] == "A: 1" and env["IMPORTER_EXTRA_HEADER_1"] == "B: 2"
    assert env["IMPORTER_SECRET_KEY"] == {"secretKeyRef": {"name": "s", "key": "secretKey"}}
    assert env["PYCDI_METRICS_PORT"] == "9000"
    assert env["PYCDI_METRICS_ADDR"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}
    assert env["http_proxy"] == "http://proxy:3128" and "https_proxy" not in env
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/data": "cdi-data-vol", "/certs": "cdi-cert-vol",
                      "/extraheaders/0": "cdi-secret-extra-headers-vol-0"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["cdi-cert-vol"]["configMap"] == {"name": "ca"}
    assert volumes["cdi-secret-extra-headers-vol-0"]["secret"] == {"secretName": "hdr"}
    assert "volumeDevices" not in container


def test_block_blank_pod_with_scratch() -> None:
    claim = pvc({f"{ANN}import.source": "none", f"{ANN}import.importPodName": "custom"}, mode="Block")
    pod = podspec.importer_pod(claim, None, podspec.PodOptions(), scratch="disk-scratch")
    container = pod["spec"]["containers"][0]
    assert pod["metadata"]["name"] == "custom"
    assert container["volumeDevices"] == [{"name": "cdi-data-vol", "devicePath": "/dev/cdi-block-volume"}]
    assert container["volumeMounts"] == [{"name": "cdi-scratch-vol", "mountPath": "/scratch"}]
    env = env_of(pod)
    assert env["IMPORTER_SOURCE"] == "none" and env["IMPORTER_ENDPOINT"] == ""
    assert env["FILESYSTEM_OVERHEAD"] == "0"  # Block has no filesystem
    assert env["IMPORTER_VOLUME_MODE"] == "Block"
    assert env["OWNER_UID"] == "pvc-uid"
    assert "resources" not in container


def test_scratch_claim_is_sized_for_the_usable_space() -> None:
    claim = pvc({f"{ANN}import.source": "http", "kubevirt.io/x": "1", f"{ANN}import.endpoint": "u"})
    pod = {"metadata": {"name": "importer-disk", "uid": "pod-uid"}}
    scratch = podspec.scratch_pvc(claim, pod, CONFIG)
    assert scratch["metadata"]["name"] == "disk-scratch"
    assert scratch["metadata"]["annotations"] == {"kubevirt.io/x": "1"}  # no CDI annotations: no second import
    assert scratch["metadata"]["ownerReferences"][0]["uid"] == "pod-uid"
    assert scratch["spec"]["storageClassName"] == "local"
    # usable = floor(ceil(1Gi / 1.1), 1Mi) = 930 MiB; required = ceil(930 MiB * 1.1) (float64, as upstream: a hair
    # above 1023 MiB) rounded up to 1 MiB
    assert scratch["spec"]["resources"]["requests"]["storage"] == str(1024 << 20)
    other = {"status": {**CONFIG["status"], "scratchSpaceStorageClass": "fast"}}
    scratch = podspec.scratch_pvc(claim, pod, other)
    assert scratch["spec"]["storageClassName"] == "fast"
    assert scratch["spec"]["resources"]["requests"]["storage"] == str(1116 << 20)  # 930 MiB * 1.2


def test_space_arithmetic_matches_upstream() -> None:
    assert podspec.usable_space(0.06, 100 << 20) == 94 << 20
    assert podspec.required_space(0.06, (64 << 20) + 1) == int((65 << 20) * 1.06) + 1


def test_generated_names_stay_within_limits() -> None:
    assert podspec.generated_name("importer", "disk") == "importer-disk"
    long_name = podspec.generated_name("importer", "d" * 260)
    assert len(long_name) <= 253
    assert long_name != podspec.generated_name("importer", "d" * 259)
    scratch = podspec.generated_name("x" * 250, "scratch")
    assert len(scratch) == 253 and scratch.endswith("-scratch")
