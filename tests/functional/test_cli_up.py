"""`pycdi up` and `pycdi user create` as a user runs them: ports, data dir, readiness, signals, kubeconfigs."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.cluster import Cluster

CDI_CRDS = ("datavolumes.cdi.kubevirt.io", "cdiconfigs.cdi.kubevirt.io", "cdis.cdi.kubevirt.io",
            "storageprofiles.cdi.kubevirt.io", "dataimportcrons.cdi.kubevirt.io", "datasources.cdi.kubevirt.io",
            "objecttransfers.cdi.kubevirt.io")


def _port(cluster: Cluster) -> int:
    port = urlsplit(cluster.server).port
    assert port is not None
    return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture()
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster this test may stop with a signal of its choice (the module's shared one must keep running)."""
    c = Cluster(tmp_path / "data").start()
    try:
        yield c
    finally:
        c.stop()


def test_port_zero_picks_a_free_port_and_the_kubeconfig_names_it(cluster: Cluster) -> None:
    port = _port(cluster)
    assert port not in (0, 6443)
    assert _port_open(port)
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{port}"
    assert config["clusters"][0]["cluster"]["certificate-authority-data"]
    # The printed lines tell the user where things are.
    log = cluster.log()
    assert f"kubeconfig: {cluster.kubeconfig}" in log
    assert f"API server: https://127.0.0.1:{port}" in log
    # kubectl verifies the embedded CA and authenticates with the admin token.
    assert cluster.kubectl("get", "--raw", "/version").returncode == 0


def test_state_lives_in_the_data_dir(cluster: Cluster) -> None:
    names = {p.name for p in cluster.data_dir.iterdir()}
    assert "kubeconfig" in names
    assert any(n.endswith(".db") for n in names), names
    assert (cluster.data_dir / "pki").is_dir()


def test_readyz_verbose_lists_every_component(cluster: Cluster) -> None:
    assert cluster.get_raw("/readyz") == "ok"
    verbose = cluster.get_raw("/readyz?verbose")
    lines = verbose.strip().splitlines()
    assert lines[-1] == "readyz check passed"
    checks = {line[3:].split(" ")[0] for line in lines[:-1]}
    assert {"ping", "store", "control-plane"} <= checks, verbose
    assert all(line.startswith("[+]") and line.endswith(" ok") for line in lines[:-1]), verbose
    # One named check can be asked for alone, and an unknown one is 404, as in kube-apiserver.
    assert cluster.get_raw("/readyz/store") == "ok"
    status, _, _ = cluster.request("GET", "/readyz/no-such-check")
    assert status == 404
    assert cluster.get_raw("/livez") == "ok" and cluster.get_raw("/healthz") == "ok"


def test_fresh_cluster_has_namespaces_and_cdi_crds(cluster: Cluster) -> None:
    namespaces = {ns["metadata"]["name"] for ns in cluster.kubectl_json("get", "namespaces")["items"]}
    assert {"default", "kube-system", "cdi"} <= namespaces
    crds = {c["metadata"]["name"]: c for c in cluster.kubectl_json("get", "crd")["items"]}
    for name in CDI_CRDS:
        assert name in crds, sorted(crds)
        conditions = {c["type"]: c["status"] for c in crds[name]["status"]["conditions"]}
        assert conditions.get("Established") == "True", name
    # The kinds are served: kubectl can list them.
    assert cluster.kubectl("get", "datavolumes", "-A").returncode == 0
    assert cluster.kubectl("wait", "--for=condition=established", "crd/datavolumes.cdi.kubevirt.io",
                           "--timeout=30s").returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly(own_cluster: Cluster, sig: int) -> None:
    port = _port(own_cluster)
    assert _port_open(port)
    process = own_cluster.process
    assert process is not None
    code = own_cluster.stop(sig)
    assert code == 0, own_cluster.log()
    assert not _port_open(port)
    assert "Traceback" not in own_cluster.log()


def test_restart_after_clean_stop_reuses_the_data_dir(own_cluster: Cluster) -> None:
    own_cluster.kubectl("create", "configmap", "kept", "--from-literal=k=v")
    assert own_cluster.stop() == 0
    own_cluster.start()
    assert own_cluster.kubectl_json("get", "configmap", "kept")["data"] == {"k": "v"}


def test_second_up_on_a_busy_port_fails_clearly(cluster: Cluster, tmp_path: Path) -> None:
    port = _port(cluster)
    other = tmp_path / "other"
    result = subprocess.run(
        [sys.executable, "-m", "pycdi", "up", "--data-dir", str(other), "--api-port", str(port),
         "--upload-proxy-port", "0"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "cannot start the API server" in result.stderr, result.stderr
    assert "address already in use" in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr
    # It did not hand out a kubeconfig for a server that is not running, and the first one still answers.
    assert not (other / "kubeconfig").exists()
    assert cluster.get_raw("/readyz") == "ok"


def test_second_up_on_the_same_data_dir_fails_clearly(cluster: Cluster) -> None:
    """Two servers over one database would hand out the same resourceVersions: the second must refuse."""
    kubeconfig = cluster.kubeconfig.read_text()
    assert cluster.process is not None
    result = subprocess.run(
        [sys.executable, "-m", "pycdi", "up", "--data-dir", str(cluster.data_dir), "--api-port", "0",
         "--upload-proxy-port", "0"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "in use by another `pycdi up`" in result.stderr, result.stderr
    assert str(cluster.process.pid) in result.stderr
    assert "Traceback" not in result.stderr
    assert cluster.kubeconfig.read_text() == kubeconfig
    assert cluster.get_raw("/readyz") == "ok"


def _whoami(cluster: Cluster, kubeconfig: Path) -> dict[str, object]:
    out = cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout
    info: dict[str, object] = json.loads(out)["status"]["userInfo"]
    return info


def test_user_create_prints_a_kubeconfig_for_the_namespace(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "cli-user-ns")
    first = cluster.new_user("cli-carol", "cli-user-ns")
    config = yaml.safe_load(first.read_text())
    context = config["contexts"][0]
    assert config["current-context"] == context["name"]
    assert context["context"]["namespace"] == "cli-user-ns"
    assert config["clusters"][0]["cluster"]["server"] == cluster.server
    assert config["users"][0]["user"]["token"] != cluster.token
    assert _whoami(cluster, first)["username"] == "cli-carol"

    # Running it again (another namespace) gives a kubeconfig that works too, for the same user.
    second_out = cluster.pycdi("user", "create", "cli-carol", "--namespace", "default",
                               "--data-dir", str(cluster.data_dir)).stdout
    second = cluster.data_dir / "kubeconfig-cli-carol-2"
    second.write_text(second_out)
    assert yaml.safe_load(second_out)["contexts"][0]["context"]["namespace"] == "default"
    assert _whoami(cluster, second)["username"] == "cli-carol"
    assert _whoami(cluster, first)["username"] == "cli-carol"

    # The context namespace is the one kubectl uses: the new user has no rights there yet.
    denied = cluster.kubectl("get", "configmaps", kubeconfig=first, check=False)
    assert denied.returncode != 0
    assert 'in the namespace "cli-user-ns"' in denied.stderr, denied.stderr


def test_user_create_without_a_running_cluster_fails_clearly(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pycdi", "user", "create", "nobody", "--data-dir",
                             str(tmp_path / "none")], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "pycdi up" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
