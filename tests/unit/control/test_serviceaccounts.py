"""Per-namespace defaults: the default ServiceAccount and kube-root-ca.crt."""

from __future__ import annotations

from pycdi.cluster.control import ControlPlane

from .conftest import CA_PEM, Cluster


async def test_default_service_account_and_root_ca_are_created_and_recreated(
    cluster: Cluster, plane: ControlPlane
) -> None:
    await cluster.namespace("team")
    sa = await cluster.wait_for(lambda: cluster.get("", "serviceaccounts", "team", "default"))
    cm = await cluster.wait_for(lambda: cluster.get("", "configmaps", "team", "kube-root-ca.crt"))
    assert cm["data"] == {"ca.crt": CA_PEM.decode()}

    await cluster.delete("", "serviceaccounts", "team", "default")
    again = await cluster.wait_for(lambda: cluster.get("", "serviceaccounts", "team", "default"))
    assert again["metadata"]["uid"] != sa["metadata"]["uid"]

    cm["data"] = {"ca.crt": "tampered"}
    await cluster.service.update(cluster.info("", "configmaps"), "team", "kube-root-ca.crt", cm, cluster.ctx)
    await cluster.wait_for(
        lambda: (
            (cluster.get("", "configmaps", "team", "kube-root-ca.crt") or {}).get("data")
            == {"ca.crt": CA_PEM.decode()}
        )
    )

    await cluster.delete("", "configmaps", "team", "kube-root-ca.crt")
    await cluster.wait_for(lambda: cluster.get("", "configmaps", "team", "kube-root-ca.crt"))


async def test_existing_namespaces_get_defaults_on_start(cluster: Cluster) -> None:
    await cluster.namespace("before")
    plane = ControlPlane(cluster.service, CA_PEM)
    await plane.start()
    try:
        await cluster.wait_for(lambda: cluster.get("", "serviceaccounts", "before", "default"))
        await cluster.wait_for(lambda: cluster.get("", "configmaps", "before", "kube-root-ca.crt"))
    finally:
        await plane.stop()
