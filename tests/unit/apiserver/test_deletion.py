"""The DELETE decisions: immediate, deferred behind finalizers, graceful pod deletion, namespace termination."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pycdi.cluster.apiserver import deletion, errors
from pycdi.cluster.apiserver.builtins import BUILTINS

INFOS = {(i.group, i.plural): i for i in BUILTINS}
NOW = datetime(2026, 11, 23, 1, 0, 0, tzinfo=UTC)


def obj(**meta: object) -> dict[str, object]:
    return {"metadata": {"name": "x", "uid": "u1", "resourceVersion": "7", **meta}}


def test_plain_object_goes_now() -> None:
    assert deletion.plan(INFOS[("", "configmaps")], obj(), {}, NOW)[0] == "now"


@pytest.mark.parametrize(("policy", "finalizer"), [("Orphan", "orphan"), ("Foreground", "foregroundDeletion")])
def test_propagation_policies_defer_behind_their_finalizer(policy: str, finalizer: str) -> None:
    action, new = deletion.plan(INFOS[("", "configmaps")], obj(), {"propagationPolicy": policy}, NOW)
    assert action == "defer"
    assert new["metadata"]["finalizers"] == [finalizer]
    assert new["metadata"]["deletionTimestamp"] == "2026-11-23T01:00:00Z"


def test_second_delete_of_a_terminating_object_changes_nothing() -> None:
    old = obj(finalizers=["a"], deletionTimestamp="2026-11-23T00:00:00Z")
    assert deletion.plan(INFOS[("", "configmaps")], old, {}, NOW) == ("unchanged", old)


def test_scheduled_pod_gets_its_grace_period_and_zero_deletes_at_once() -> None:
    pod = {**obj(), "spec": {"nodeName": "n", "terminationGracePeriodSeconds": 5}, "status": {"phase": "Running"}}
    action, new = deletion.plan(INFOS[("", "pods")], pod, {}, NOW)
    assert action == "defer" and new["metadata"]["deletionGracePeriodSeconds"] == 5
    assert new["metadata"]["deletionTimestamp"] == "2026-11-23T01:00:05Z"
    assert deletion.plan(INFOS[("", "pods")], pod, {"gracePeriodSeconds": 0}, NOW)[0] == "now"
    finished = {**pod, "status": {"phase": "Succeeded"}}
    assert deletion.plan(INFOS[("", "pods")], finished, {}, NOW)[0] == "now"


def test_namespace_terminates_and_crd_waits_for_cleanup() -> None:
    ns = {**obj(), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    action, new = deletion.plan(INFOS[("", "namespaces")], ns, {}, NOW)
    assert action == "defer" and new["status"]["phase"] == "Terminating"
    action, new = deletion.plan(INFOS[("apiextensions.k8s.io", "customresourcedefinitions")], obj(), {}, NOW)
    assert new["metadata"]["finalizers"] == [deletion.CRD_CLEANUP_FINALIZER]


def test_preconditions() -> None:
    info = INFOS[("", "configmaps")]
    deletion.check_preconditions(info, "x", obj()["metadata"], {"preconditions": {"uid": "u1"}})
    with pytest.raises(errors.APIError) as e:
        deletion.check_preconditions(info, "x", obj()["metadata"], {"preconditions": {"resourceVersion": "6"}})
    assert e.value.code == 409 and "ResourceVersion in precondition: 6" in e.value.message
