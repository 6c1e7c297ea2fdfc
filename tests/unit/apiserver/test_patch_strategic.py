"""Strategic merge patch for built-in kinds: merge keys, directives, null deletion, ordering."""

from __future__ import annotations

from typing import Any

import pytest

from pycdi.cluster.apiserver.patching import PatchError, strategic_merge_patch


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["a", "b"], "labels": {"app": "x"}},
        "spec": {
            "containers": [
                {"name": "main", "image": "img:1",
                 "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 80}], "args": ["--x"]},
                {"name": "side", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}}],
            "tolerations": [{"key": "k1"}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "False"},
                                  {"type": "Initialized", "status": "True"}]},
    }


def smp(target: dict[str, Any], patch: dict[str, Any], kind: str = "Pod") -> dict[str, Any]:
    return strategic_merge_patch(target, patch, "v1", kind)


def test_containers_merge_by_name_and_env_by_name() -> None:
    out = smp(pod(), {"spec": {"containers": [
        {"name": "main", "image": "img:2",
         "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}]},
    ]}})
    main, side = out["spec"]["containers"]
    assert main["image"] == "img:2" and side == {"name": "side", "image": "side:1"}
    assert main["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"},
                           {"name": "C", "value": "3"}]
    assert main["ports"] == [{"containerPort": 80}]


def test_new_container_is_appended_and_lists_without_strategy_replaced() -> None:
    out = smp(pod(), {"spec": {"containers": [{"name": "new", "image": "n"}],
                               "tolerations": [{"key": "k2"}]}})
    # apimachinery's mergeSortedSlice puts items the live list lacks before server-only ones
    # (kubectl avoids this by sending $setElementOrder).
    assert [c["name"] for c in out["spec"]["containers"]] == ["new", "main", "side"]
    assert out["spec"]["tolerations"] == [{"key": "k2"}]
    out = smp(pod(), {"spec": {"containers": [{"name": "main", "args": ["--y"]}]}})
    assert out["spec"]["containers"][0]["args"] == ["--y"]


def test_patch_delete_directive_in_list_and_map() -> None:
    out = smp(pod(), {"spec": {"containers": [{"name": "side", "$patch": "delete"}],
                               "volumes": [{"name": "data", "$patch": "delete"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["main"]
    assert out["spec"]["volumes"] == []
    out = smp(pod(), {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_patch_replace_directive() -> None:
    out = smp(pod(), {"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}})
    assert out["spec"]["containers"] == [{"name": "only", "image": "o"}]
    out = smp(pod(), {"metadata": {"labels": {"$patch": "replace", "new": "1"}}})
    assert out["metadata"]["labels"] == {"new": "1"}


def test_finalizers_merge_as_set_and_delete_from_primitive_list() -> None:
    out = smp(pod(), {"metadata": {"finalizers": ["b", "c"]}})
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]
    out = smp(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]
    with pytest.raises(PatchError) as info:
        smp(pod(), {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}})
    assert info.value.code == 400


def test_status_conditions_merge_by_type() -> None:
    out = smp(pod(), {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                                {"type": "PodScheduled", "status": "True"}]}})
    assert out["status"]["conditions"] == [
        {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"},
        {"type": "Initialized", "status": "True"}]
    pvc = {"kind": "PersistentVolumeClaim", "status": {"phase": "Pending", "conditions": [
        {"type": "Resizing", "status": "True"}]}}
    out = smp(pvc, {"status": {"phase": "Bound", "conditions": [
        {"type": "FileSystemResizePending", "status": "True"}]}}, "PersistentVolumeClaim")
    assert [c["type"] for c in out["status"]["conditions"]] == ["FileSystemResizePending", "Resizing"]


def test_null_deletes_keys() -> None:
    out = smp(pod(), {"metadata": {"labels": {"app": None}},
                      "spec": {"containers": [{"name": "main", "args": None}], "tolerations": None}})
    assert out["metadata"]["labels"] == {}
    assert "args" not in out["spec"]["containers"][0]
    assert "tolerations" not in out["spec"]
    out = smp(pod(), {"spec": {"nodeSelector": {"a": "1", "b": None}}})
    assert out["spec"]["nodeSelector"] == {"a": "1"}


def test_set_element_order() -> None:
    out = smp(pod(), {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "main"}],
                               "containers": [{"name": "main", "image": "img:3"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["side", "main"]
    assert out["spec"]["containers"][1]["image"] == "img:3"
    out = smp(pod(), {"metadata": {"$setElementOrder/finalizers": ["b", "a"]}})
    assert out["metadata"]["finalizers"] == ["b", "a"]


def test_retain_keys_clears_other_volume_sources() -> None:
    out = smp(pod(), {"spec": {"volumes": [
        {"name": "data", "$retainKeys": ["emptyDir", "name"], "emptyDir": {}}]}})
    assert out["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    with pytest.raises(PatchError) as info:
        smp(pod(), {"spec": {"volumes": [{"name": "data", "$retainKeys": ["name"], "emptyDir": {}}]}})
    assert info.value.code == 400


def test_missing_merge_key_and_bad_directive_are_400() -> None:
    with pytest.raises(PatchError) as info:
        smp(pod(), {"spec": {"containers": [{"image": "x"}]}})
    assert info.value.code == 400
    with pytest.raises(PatchError) as info:
        smp(pod(), {"metadata": {"labels": {"$patch": "explode"}}})
    assert info.value.code == 400
    with pytest.raises(PatchError):
        strategic_merge_patch(pod(), ["not", "a", "map"], "v1", "Pod")


def test_kubectl_client_side_reapply_of_pvc() -> None:
    live: dict[str, Any] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "pvc1", "namespace": "default", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"old":1}'}, "labels": {"a": "1"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    patch = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"new":1}'},
                          "labels": {"a": None, "b": "2"}},
             "spec": {"resources": {"requests": {"storage": "2Gi"}}, "accessModes": ["ReadWriteMany"]}}
    out = smp(live, patch, "PersistentVolumeClaim")
    assert out["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": '{"new":1}'}
    assert out["metadata"]["labels"] == {"b": "2"}
    assert out["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "2Gi"}}}
    assert live["spec"]["resources"]["requests"]["storage"] == "1Gi"  # input untouched


def test_owner_references_merge_by_uid_and_service_ports_by_port() -> None:
    cm = {"kind": "ConfigMap", "metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    out = smp(cm, {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}, "ConfigMap")
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["2", "1"]
    out = smp(cm, {"metadata": {"$setElementOrder/ownerReferences": [{"uid": "1"}, {"uid": "2"}],
                                "ownerReferences": [{"uid": "2", "name": "b"}]}}, "ConfigMap")
    assert [o["uid"] for o in out["metadata"]["ownerReferences"]] == ["1", "2"]
    svc = {"kind": "Service",
           "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    out = smp(svc, {"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}, "Service")
    assert out["spec"]["ports"][1] == {"port": 443, "name": "https", "targetPort": 8443}


def test_new_field_with_directives_is_cleaned() -> None:
    patch = {"spec": {"containers": [{"name": "a", "image": "x", "args": None}]}}
    out = smp({"kind": "Pod", "spec": {}}, patch)
    assert out["spec"]["containers"] == [{"name": "a", "image": "x"}]
