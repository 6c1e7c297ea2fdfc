"""The host-assisted clone's pure parts: when a clone cannot be done, the workers' pods, their progress metric,
and the VM controller's DataVolume manifests; and the clone's Secret (shared secret and TLS certificate) made
against a real embedded API server, then used by the real workers."""

from __future__ import annotations

import base64
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from pycdi.controllers.clone import podspec
from pycdi.controllers.clone.hostclone import (
    HostCloneOptions,
    HostCloneReconciler,
    incompatibility,
    progress_from_metrics,
)
from pycdi.controllers.importpod.podspec import PodOptions
from pycdi.controllers.runtime import Informer
from pycdi.controllers.vm import data_volume_for
from pycdi.controllers.vm.controller import service_account, wants_to_run
from pycdi.datapath.clone import certs
from pycdi.datapath.clone import protocol as p
from pycdi.datapath.clone.progress import CloneProgress
from pycdi.datapath.clone.source import SourceConfig, run
from pycdi.datapath.clone.target import TargetConfig, TargetResult, serve
from pycdi.kube.client import KubeClient
from pycdi.kube.resources import CDI_CONFIGS, DATA_VOLUMES, NAMESPACES, PERSISTENT_VOLUME_CLAIMS, PODS, SECRETS

Obj = dict[str, Any]


def claim(name: str, ns: str, *, mode: str = "Filesystem", size: str = "1Gi", content: str = "kubevirt",
          **annotations: str) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                         "annotations": {"cdi.kubevirt.io/storage.contentType": content, **annotations}},
            "spec": {"volumeMode": mode, "storageClassName": "local",
                     "resources": {"requests": {"storage": size}}}}


def test_modes_may_differ_only_for_kubevirt_content() -> None:
    assert incompatibility(claim("s", "a", mode="Block"), claim("t", "b", size="2Gi"), {"local": 0.06}) == ""
    assert incompatibility(claim("s", "a", content="archive"), claim("t", "b", mode="Block", content="archive"),
                           {}) == ("source volumeMode (Filesystem) and target volumeMode (Block) do not match, "
                                   "contentType (archive)")
    assert "do not match" in incompatibility(claim("s", "a"), claim("t", "b", content="archive"), {})


def test_usable_space_is_compared_after_the_filesystem_overhead() -> None:
    # A 1Gi Block source does not fit the image space a 1Gi Filesystem claim leaves after 6% overhead.
    assert incompatibility(claim("s", "a", mode="Block"), claim("t", "b"), {"local": 0.06}) == (
        "target resources requests storage size is smaller than the source")
    permissive = claim("t", "b", **{"cdi.kubevirt.io/permissiveClone": "true"})
    assert incompatibility(claim("s", "a", mode="Block"), permissive, {"local": 0.06}) == ""


def test_workers_pods() -> None:
    target = claim("copy", "dst", mode="Block", **{"cdi.kubevirt.io/storage.preallocation.requested": "true"})
    source = claim("disk", "src")
    options = PodOptions(image="img")
    pod = podspec.target_pod(target, None, options)
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}
    assert pod["metadata"]["name"] == "cdi-clone-target-copy" and pod["metadata"]["ownerReferences"][0]["uid"] == \
        "uid-copy"
    assert env["DESTINATION"] == "/dev/cdi-block-volume" and env["VOLUME_MODE"] == "block"
    assert env["PREALLOCATION"] == "true"
    assert env["CLONER_SECRET"] == {"secretKeyRef": {"name": "cdi-clone-uid-copy", "key": "secret"}}
    assert env["CLONER_TLS_CERT"] == {"secretKeyRef": {"name": "cdi-clone-uid-copy", "key": "tls.crt"}}
    assert env["CLONER_TLS_KEY"] == {"secretKeyRef": {"name": "cdi-clone-uid-copy", "key": "tls.key"}}
    assert pod["spec"]["containers"][0]["volumeDevices"] == [{"name": "cdi-data-vol",
                                                              "devicePath": "/dev/cdi-block-volume"}]
    src = podspec.source_pod(target, source, "10.0.0.7", None, options)
    env = {e["name"]: e.get("value") for e in src["spec"]["containers"][0]["env"]}
    assert "CLONER_TLS_CERT" in env and "CLONER_TLS_KEY" not in env  # the key goes to the target alone
    assert src["metadata"]["name"] == "uid-copy-source-pod" and src["metadata"]["namespace"] == "src"
    assert "ownerReferences" not in src["metadata"]  # another namespace: found by its label instead
    assert src["metadata"]["labels"]["cdi.kubevirt.io/OwnedByUID"] == "uid-copy"
    assert env["UPLOAD_URL"] == "tcp://10.0.0.7:8443" and env["MOUNT_POINT"] == "/var/run/cdi/clone/source"
    assert src["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "disk", "readOnly": True}
    assert src["spec"]["containers"][0]["volumeMounts"][0]["readOnly"] is True
    data = podspec.complete_clone_data({"secret": "v"})
    secret = podspec.clone_secret(target, "src", data)
    assert secret["stringData"] == {"secret": "v", "tls.crt": data["tls.crt"]}
    assert "ownerReferences" not in secret["metadata"]
    assert podspec.clone_secret(target, "dst", data)["stringData"] == data


def test_clone_data_keeps_what_is_fit_and_completes_the_rest() -> None:
    data = podspec.complete_clone_data({})
    assert len(data["secret"]) == 64 and certs.usable(data["tls.crt"], data["tls.key"])
    assert podspec.complete_clone_data(data) == data
    other = podspec.complete_clone_data({})
    mismatched = podspec.complete_clone_data({**data, "tls.key": other["tls.key"]})
    assert mismatched["secret"] == data["secret"] and mismatched["tls.crt"] != data["tls.crt"]
    assert certs.usable(mismatched["tls.crt"], mismatched["tls.key"])


def test_progress_is_read_for_its_owner() -> None:
    page = ('# TYPE kubevirt_cdi_clone_progress counter\n'
            'kubevirt_cdi_clone_progress_total{ownerUID="other"} 90.0\n'
            'kubevirt_cdi_clone_progress_total{ownerUID="me"} 42.5\n')
    assert progress_from_metrics(page, "me") == 42.5
    assert progress_from_metrics(page, "nobody") is None


def test_vm_data_volumes() -> None:
    vm = {"metadata": {"name": "vm", "namespace": "ns", "uid": "vm-uid"},
          "spec": {"runStrategy": "Always",
                   "template": {"spec": {"priorityClassName": "high", "volumes": [
                       {"name": "sa", "serviceAccount": {"serviceAccountName": "builder"}}]}},
                   "dataVolumeTemplates": [{"metadata": {"name": "disk", "labels": {"a": "b"}},
                                            "spec": {"source": {"pvc": {"name": "golden"}}, "storage": {}}}]}}
    dv = data_volume_for(vm, vm["spec"]["dataVolumeTemplates"][0])
    assert dv["metadata"]["name"] == "disk" and dv["metadata"]["namespace"] == "ns"
    assert dv["metadata"]["labels"] == {"a": "b", "kubevirt.io/created-by": "vm-uid"}
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/allowClaimAdoption"] == "true"
    assert dv["metadata"]["ownerReferences"] == [{"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                                                  "name": "vm", "uid": "vm-uid", "controller": True,
                                                  "blockOwnerDeletion": True}]
    assert dv["spec"]["source"]["pvc"] == {"name": "golden", "namespace": "ns"}
    assert dv["spec"]["priorityClassName"] == "high"
    assert service_account(vm) == "builder" and wants_to_run(vm)
    vm["spec"]["template"]["spec"]["volumes"] = []
    assert service_account(vm) == "default"


def test_the_source_workers_metric_is_what_the_controller_scrapes() -> None:
    progress = CloneProgress("owner-1")
    port = progress.serve(0, "127.0.0.1")
    progress.set(42.5)
    progress.set(10.0)  # never goes back
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        page = response.read().decode()
    assert progress_from_metrics(page, "owner-1") == 42.5


def _decoded(secret: Obj) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


async def _namespace(client: KubeClient) -> str:
    ns = f"ns-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return ns


async def test_an_older_secret_is_completed_and_the_workers_talk_tls_with_it(client: KubeClient,
                                                                           tmp_path: Path) -> None:
    target_ns, source_ns = await _namespace(client), await _namespace(client)
    pvc = await client.create(PERSISTENT_VOLUME_CLAIMS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "copy"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}, target_ns)
    name = podspec.secret_name(pvc)
    # As the controller made it before the stream was encrypted: the shared secret alone.
    await client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                  "type": "Opaque", "stringData": {"secret": "older"}}, target_ns)
    reconciler = HostCloneReconciler(client, Informer(client, PERSISTENT_VOLUME_CLAIMS), Informer(client, PODS),
                                     Informer(client, CDI_CONFIGS), Informer(client, DATA_VOLUMES), None,
                                     HostCloneOptions())
    await reconciler._ensure_secrets(pvc, source_ns)
    beside_claim = await client.get(SECRETS, name, target_ns)
    beside_source = await client.get(SECRETS, name, source_ns)
    mine, theirs = _decoded(beside_claim), _decoded(beside_source)
    assert mine["secret"] == theirs["secret"] == "older"
    assert mine["tls.crt"] == theirs["tls.crt"] and certs.usable(mine["tls.crt"], mine["tls.key"])
    assert "tls.key" not in theirs  # the source's namespace never holds the key
    await reconciler._ensure_secrets(pvc, source_ns)  # complete now: left as it is
    assert (await client.get(SECRETS, name, target_ns))["metadata"]["resourceVersion"] == \
        beside_claim["metadata"]["resourceVersion"]
    assert (await client.get(SECRETS, name, source_ns))["metadata"]["resourceVersion"] == \
        beside_source["metadata"]["resourceVersion"]

    # The workers, configured from these Secrets as their pods' env would be.
    src, dst = tmp_path / "src.img", tmp_path / "disk.img"
    src.write_bytes(b"clone me" * 100_000)
    listening = threading.Event()
    port: list[int] = []
    done: list[TargetResult] = []
    config = TargetConfig("127.0.0.1", 0, str(dst), False, "kubevirt", mine["secret"], mine["tls.crt"],
                          mine["tls.key"])
    worker = threading.Thread(target=lambda: done.append(serve(config, lambda n: (port.append(n),
                                                                                  listening.set()))), daemon=True)
    worker.start()
    assert listening.wait(10)
    # A certificate that is not this clone's (an older Secret's, another clone's) is refused by the source.
    with pytest.raises(p.ProtocolError, match="TLS handshake"):
        run(SourceConfig("127.0.0.1", port[0], str(src), "kubevirt", theirs["secret"], certs.new_certificate()[0]))
    result = run(SourceConfig("127.0.0.1", port[0], str(src), "kubevirt", theirs["secret"], theirs["tls.crt"]))
    worker.join(30)
    assert done and result.size == 800_000 and dst.read_bytes() == src.read_bytes()
