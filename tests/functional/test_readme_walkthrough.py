"""The README's five-minute walkthrough, run as written against a real `pycdi up`."""

from __future__ import annotations

from pathlib import Path

from tests.support.cluster import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "getting-started"
TYPO = """apiVersion: cdi.kubevirt.io/v1beta1
kind: DataVolume
metadata: {name: typo, namespace: vm-images}
spec: {source: {htttp: {url: "http://x"}}, storage: {resources: {requests: {storage: 1Gi}}}}
"""


def test_walkthrough(cluster: Cluster) -> None:
    namespaces = cluster.kubectl("get", "namespaces").stdout
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "cdi"):
        assert f"\n{ns} " in namespaces
    assert "datavolumes" in cluster.kubectl("api-resources").stdout

    cluster.kubectl("apply", "-f", str(EXAMPLES / "01-namespace.yaml"))
    cluster.kubectl("apply", "-f", str(EXAMPLES / "02-datavolume.yaml"))
    table = cluster.kubectl("get", "dv", "-n", "vm-images").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "PROGRESS", "RESTARTS", "AGE"]
    assert table[1].startswith("cirros ")
    url = cluster.kubectl("get", "dv", "cirros", "-n", "vm-images", "-o",
                          "jsonpath={.spec.source.http.url}").stdout
    assert url == "https://download.cirros-cloud.net/0.6.2/cirros-0.6.2-x86_64-disk.img"
    cluster.kubectl("label", "dv", "cirros", "-n", "vm-images", "tier=gold")
    assert cluster.kubectl("get", "dv", "-n", "vm-images", "-l", "tier=gold", "-o", "name").stdout.strip() == \
        "datavolume.cdi.kubevirt.io/cirros"

    cluster.kubectl("apply", "-f", str(EXAMPLES / "04-blank-datavolume.yaml"))
    cluster.kubectl("wait", "dv/blank-disk", "-n", "vm-images", "--for=condition=Ready", "--timeout=120s")
    row = cluster.kubectl("get", "dv", "blank-disk", "-n", "vm-images", "--no-headers").stdout.split()
    assert row[1:3] == ["Succeeded", "100.0%"], row

    typo = cluster.kubectl("apply", "-f", "-", input=TYPO, check=False)
    assert typo.returncode != 0
    assert "Error from server (BadRequest)" in typo.stderr
    assert 'strict decoding error: unknown field "spec.source.htttp"' in typo.stderr
    assert cluster.kubectl("get", "dv", "typo", "-n", "vm-images", check=False).returncode != 0

    alice = cluster.new_user("alice", "vm-images")
    denied = cluster.kubectl("get", "dv", kubeconfig=alice, check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr
    cluster.kubectl("apply", "-f", str(EXAMPLES / "03-rbac.yaml"))
    assert "cirros" in cluster.kubectl("get", "dv", kubeconfig=alice).stdout
    can = cluster.kubectl("auth", "can-i", "delete", "datavolumes", "-n", "vm-images", "--as", "alice",
                          check=False)
    assert can.stdout.strip() == "no"
    assert cluster.kubectl("auth", "can-i", "create", "datavolumes", "-n", "vm-images", "--as", "alice"
                           ).stdout.strip() == "yes"


def test_state_survives_a_restart(tmp_path: Path) -> None:
    """'Run make up again and every object is still there.'"""
    c = Cluster(tmp_path / "state")
    c.start()
    try:
        c.kubectl("apply", "-f", str(EXAMPLES / "01-namespace.yaml"))
        c.kubectl("apply", "-f", str(EXAMPLES / "02-datavolume.yaml"))
        uid = c.kubectl("get", "dv", "cirros", "-n", "vm-images", "-o", "jsonpath={.metadata.uid}").stdout
        assert c.stop() == 0
        c.start()
        assert c.kubectl("get", "dv", "cirros", "-n", "vm-images", "-o",
                         "jsonpath={.metadata.uid}").stdout == uid
    finally:
        c.stop()
