"""`pycdi image-upload` against a real `pycdi up`: the seed documents' virtctl command lines, every format to
DataVolumes and PVCs in both volume modes, virtctl's argument errors, RBAC on upload tokens, and a retry after a
connection cut in the middle of the body. (The proxy's and the server's HTTP answers: test_upload_server.py.)"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import release_loop_devices
from tests.support.cluster import Cluster
from tests.support.images import Corpus, sha256_file
from tests.support.relay import cutting_relay
from tests.support.seeds import SEED_DIR

ANN = "cdi.kubevirt.io/storage."
DONE = "Uploading data completed successfully, waiting for processing to complete, you can hit ctrl-c without " \
       "interrupting the progress"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ns(cluster: Cluster) -> str:
    name = unique("iu")
    cluster.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="module")
def proxy_url(cluster: Cluster) -> str:
    return str(cluster.kubectl_json("get", "cdiconfig", "config")["status"]["uploadProxyURL"])


def image_upload(cluster: Cluster, *args: str, cwd: Path | None = None, kubeconfig: Path | None = None
                 ) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: KUBECONFIG in the environment, output to pipes (plain progress lines)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig or cluster.kubeconfig)}
    return subprocess.run([sys.executable, "-m", "pycdi", "image-upload", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, check=False)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The last line of stderr of a command that failed (virtctl prints the error alone, exit status 1)."""
    assert done.returncode == 1, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stderr.strip().splitlines()[-1]


def seed_command(pattern: str) -> list[str]:
    """A `virtctl image-upload` command line as a seed document prints it, as argv: shell line continuations
    joined, `<placeholders>` unwrapped, trailing callout numbers dropped, `virtctl` the first word."""
    text = " ".join(p.read_text() for p in sorted(SEED_DIR.glob("*.txt")))
    match = re.search(pattern, text)
    assert match, pattern
    line = match.group(0).replace("\\ ", " ").replace("\\\n", " ")
    line = re.sub(r"<([^<>]*)>", r"\1", line)
    argv = shlex.split(line)
    while argv and argv[-1].isdigit():
        argv.pop()
    assert argv[:2] == ["virtctl", "image-upload"], argv
    return argv[2:]


def substitute(argv: list[str], flag: str, value: str) -> list[str]:
    """The flag's value replaced (the seeds name hosts and files of their own machines)."""
    out = [f"{flag}={value}" if a.startswith(f"{flag}=") else a for a in argv]
    assert out != argv, (flag, argv)
    return out


def pvc_of(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(cluster.kubectl_json("get", "pvc", name, "-n", ns))


def disk_of(cluster: Cluster, ns: str, name: str) -> Path:
    pvc = pvc_of(cluster, ns, name)
    pv = cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    path = Path(pv["spec"]["hostPath"]["path"])
    return path if pvc["spec"].get("volumeMode") == "Block" else path / "disk.img"


def assert_disk(cluster: Cluster, ns: str, name: str, corpus: Corpus, image: str) -> None:
    disk = disk_of(cluster, ns, name)
    assert sha256_file(disk, corpus.virtual_size) == corpus.expected_sha256(image)


def assert_virtctl_lines(stdout: str, kind: str, ns: str, name: str, url: str, image: str) -> None:
    """virtctl's lines, in its order (progress lines in between)."""
    lines = [line.rstrip() for line in stdout.splitlines()]
    expected = [f"PVC {ns}/{name} not found", f"{kind} {ns}/{name} created", f"Uploading data to {url}", DONE,
                "Processing completed successfully", f"Uploading {image} completed successfully"]
    positions = [lines.index(line) for line in expected]
    assert positions == sorted(positions), stdout
    progress = [line for line in lines if "(100.0%)" in line]
    assert progress and " / " in progress[-1] and "/s" in progress[-1], stdout


# ---- the seed documents' command lines -------------------------------------------------------------------

def test_seed_cirros_pvc_block_rwx_insecure(cluster: Cluster, proxy_url: str, image_corpus: Corpus,
                                           tmp_path: Path) -> None:
    """Seed 000's script: a Block PVC, ReadWriteMany, the proxy named by URL, TLS not verified, a relative path."""
    argv = seed_command(r"virtctl image-upload pvc pvc-image-cirros01 .*?(?= EOF)")
    assert argv == ["pvc", "pvc-image-cirros01", "--size", "2Gi", "--access-mode=ReadWriteMany",
                    "--volume-mode=block", "--insecure", "--uploadproxy-url=https://12.107.65.150",
                    "--image-path=./cirros-0.5.1-x86_64-disk.img"]
    argv = substitute(argv, "--uploadproxy-url", proxy_url)
    (tmp_path / "cirros-0.5.1-x86_64-disk.img").symlink_to(image_corpus.path("qcow2"))  # cirros ships qcow2
    stdout = ok(image_upload(cluster, *argv, cwd=tmp_path))
    assert_virtctl_lines(stdout, "PersistentVolumeClaim", "default", "pvc-image-cirros01", proxy_url,
                         "./cirros-0.5.1-x86_64-disk.img")
    pvc = pvc_of(cluster, "default", "pvc-image-cirros01")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["volumeMode"] == "Block"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert pvc["metadata"]["labels"]["cdi.kubevirt.io/applyStorageProfile"] == "true"
    ann = pvc["metadata"]["annotations"]
    assert ann[f"{ANN}upload.target"] == "" and ann[f"{ANN}contentType"] == "kubevirt"
    assert ann[f"{ANN}pod.phase"] == "Succeeded"
    assert_disk(cluster, "default", "pvc-image-cirros01", image_corpus, "qcow2")


def test_seed_fedora_pvc_name_and_size_flags(cluster: Cluster, proxy_url: str, image_corpus: Corpus,
                                            tmp_path: Path) -> None:
    """Seed 004's deprecated form: the proxy found in CDIConfig, its certificate checked with the kubeconfig's CA."""
    argv = seed_command(r"virtctl image-upload --pvc-name=\S+ --pvc-size=\S+ --image-path=\S+")
    assert argv == ["--pvc-name=upload-fedora-pvc", "--pvc-size=2Gi", "--image-path=/images/fedora.qcow2"]
    image = tmp_path / "fedora.qcow2"
    image.symlink_to(image_corpus.path("qcow2"))
    done = image_upload(cluster, *substitute(argv, "--image-path", str(image)))
    assert_virtctl_lines(ok(done), "PersistentVolumeClaim", "default", "upload-fedora-pvc", proxy_url, str(image))
    assert "Flag --pvc-name has been deprecated, specify the name as the second argument instead." in done.stderr
    assert "Flag --pvc-size has been deprecated, use --size instead." in done.stderr
    assert pvc_of(cluster, "default", "upload-fedora-pvc")["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert_disk(cluster, "default", "upload-fedora-pvc", image_corpus, "qcow2")


def test_seed_dv_name_into_an_existing_block_data_volume(cluster: Cluster, ns: str, image_corpus: Corpus,
                                                        tmp_path: Path) -> None:
    """Seed 004's upload "to a block DataVolume" that exists already: `--dv-name` (not a virtctl flag: read as
    `dv NAME`)."""
    argv = seed_command(r"virtctl image-upload --dv-name=\S+ --image-path=\S+ 1 2")
    assert argv == ["--dv-name=upload-datavolume", "--image-path=/images/fedora.qcow2"]
    dv = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
          "metadata": {"name": "upload-datavolume", "namespace": ns},
          "spec": {"source": {"upload": {}}, "storage": {"resources": {"requests": {"storage": "100Mi"}},
                                                         "volumeMode": "Block", "accessModes": ["ReadWriteOnce"]}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(dv))
    image = tmp_path / "fedora.qcow2"
    image.symlink_to(image_corpus.path("qcow2"))
    done = image_upload(cluster, *substitute(argv, "--image-path", str(image)), "-n", ns)
    stdout = ok(done)
    assert "Flag --dv-name has been deprecated, specify the name as the second argument instead." in done.stderr
    assert f"Uploading {image} completed successfully" in stdout
    assert cluster.kubectl_json("get", "dv", "upload-datavolume", "-n", ns)["status"]["phase"] == "Succeeded"
    assert_disk(cluster, ns, "upload-datavolume", image_corpus, "qcow2")


# ---- formats, targets, volume modes ----------------------------------------------------------------------

@pytest.mark.parametrize(("target", "volume_mode", "image"), [
    ("dv", "filesystem", "raw"),
    ("dv", "block", "qcow2"),
    ("dv", "filesystem", "raw.xz"),
    ("pvc", "block", "raw.xz"),
    ("pvc", "filesystem", "qcow2"),
    ("pvc", "filesystem", "raw"),
])
def test_formats_to_data_volumes_and_pvcs(cluster: Cluster, ns: str, proxy_url: str, image_corpus: Corpus,
                                          target: str, volume_mode: str, image: str) -> None:
    name = unique(image.replace(".", "-"))
    path = str(image_corpus.path(image))
    stdout = ok(image_upload(cluster, target, name, "-n", ns, "--size=100Mi", f"--volume-mode={volume_mode}",
                             f"--image-path={path}"))
    kind = "DataVolume" if target == "dv" else "PersistentVolumeClaim"
    assert_virtctl_lines(stdout, kind, ns, name, proxy_url, path)
    pvc = pvc_of(cluster, ns, name)
    assert pvc["spec"]["volumeMode"] == volume_mode.capitalize()
    if target == "dv":
        dv = cluster.kubectl_json("get", "dv", name, "-n", ns)
        assert dv["status"]["phase"] == "Succeeded"  # the command waited for the DataVolume itself
        assert dv["spec"]["source"] == {"upload": {}} and dv["spec"]["contentType"] == "kubevirt"
        assert "accessModes" not in dv["spec"]["storage"]  # the `local` StorageProfile fills them in
    assert_disk(cluster, ns, name, image_corpus, image)


def test_block_data_volume_on_a_class_whose_profile_lacks_block(cluster: Cluster, ns: str,
                                                                image_corpus: Corpus) -> None:
    """A class whose StorageProfile names access modes for Filesystem only: the DataVolume virtctl sends (Block,
    no access modes) would never be valid, so ReadWriteOnce is sent with it."""
    name = unique("fsonly")
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
        "provisioner": "kubevirt.io/hostpath-provisioner", "volumeBindingMode": "Immediate"}))
    cluster.kubectl("wait", f"storageprofile/{name}", "--for=jsonpath={.status.claimPropertySets[0].volumeMode}"
                    "=Filesystem", "--timeout=60s")
    sets = cluster.kubectl_json("get", "storageprofile", name)["status"]["claimPropertySets"]
    assert all(s["volumeMode"] != "Block" for s in sets)
    ok(image_upload(cluster, "dv", "disk", "-n", ns, "--size=100Mi", f"--storage-class={name}",
                    "--volume-mode=block", f"--image-path={image_corpus.path('raw')}"))
    storage = cluster.kubectl_json("get", "dv", "disk", "-n", ns)["spec"]["storage"]
    assert (storage["accessModes"], storage["volumeMode"]) == (["ReadWriteOnce"], "Block")
    assert_disk(cluster, ns, "disk", image_corpus, "raw")


@pytest.mark.parametrize("target", ["dv", "pvc"])
def test_archive_upload_extracts_into_the_volume(cluster: Cluster, ns: str, image_corpus: Corpus,
                                                 target: str) -> None:
    ok(image_upload(cluster, target, "files", "-n", ns, "--size=100Mi",
                    f"--archive-path={image_corpus.path('archive.tar')}"))
    pvc = pvc_of(cluster, ns, "files")
    assert pvc["metadata"]["annotations"][f"{ANN}contentType"] == "archive"
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    root = disk_of(cluster, ns, "files").parent
    for rel, digest in image_corpus.data_manifest().items():
        assert sha256_file(root / rel) == digest, rel


def test_existing_targets_datasource_and_instancetype_labels(cluster: Cluster, ns: str,
                                                             image_corpus: Corpus) -> None:
    """`--no-create` on a plain PVC makes it an upload target; `--datasource` and the instancetype flags label
    what is created and point a DataSource at it."""
    plain = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "plain", "namespace": ns},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(plain))
    raw = str(image_corpus.path("raw"))
    stdout = ok(image_upload(cluster, "pvc", "plain", "-n", ns, "--no-create", f"--image-path={raw}"))
    assert f"Using existing PVC {ns}/plain" in stdout
    assert f"{ANN}upload.target" in pvc_of(cluster, ns, "plain")["metadata"]["annotations"]
    assert_disk(cluster, ns, "plain", image_corpus, "raw")

    stdout = ok(image_upload(cluster, "dv", "golden", "-n", ns, "--size=100Mi", f"--image-path={raw}",
                             "--datasource", "--default-instancetype=u1.small", "--default-preference=fedora"))
    assert f"Created a new DataSource {ns}/golden" in stdout
    labels = cluster.kubectl_json("get", "dv", "golden", "-n", ns)["metadata"]["labels"]
    assert labels["instancetype.kubevirt.io/default-instancetype"] == "u1.small"
    assert labels["instancetype.kubevirt.io/default-preference"] == "fedora"
    source = cluster.kubectl_json("get", "datasource", "golden", "-n", ns)
    assert source["spec"]["source"] == {"pvc": {"name": "golden", "namespace": ns}}
    assert source["metadata"]["labels"]["instancetype.kubevirt.io/default-preference"] == "fedora"
    # Done means done: a second upload to it is refused before any byte moves.
    again = image_upload(cluster, "dv", "golden", "-n", ns, "--size=100Mi", f"--image-path={raw}")
    assert refused(again) == "PVC golden already successfully imported/cloned/updated"


# ---- argument errors ---------------------------------------------------------------------------------

ARGUMENT_ERRORS = [
    (["pvc", "x"], "either image-path or archive-path must be provided"),
    (["pvc", "x", "--image-path=IMG", "--archive-path=IMG"],
     "cannot handle both image-path and archive-path, provide only one"),
    (["--image-path=IMG"], "expecting two args"),
    (["pvc"], "either image-path or archive-path must be provided"),
    (["pvc", "x", "y", "--image-path=IMG"], "accepts at most 2 arg(s), received 3"),
    (["vm", "x", "--image-path=IMG"], "invalid resource type vm"),
    (["pvc", "x", "--image-path=IMG", "--volume-mode=xfs"],
     "Invalid volume mode 'xfs'. Valid values are 'block' and 'filesystem'."),
    (["pvc", "x", "--image-path=IMG", "--volume-mode=filesystem", "--block-volume"],
     "incompatible --volume-mode 'filesystem' and --block-volume"),
    (["pvc", "x", "--archive-path=IMG", "--volume-mode=block"],
     "In archive upload the volume mode should always be filesystem"),
    (["pvc", "x", "--image-path=IMG", "--size=1Gi", "--pvc-size=2Gi"],
     "--pvc-size and --size can not be specified at the same time"),
    (["pvc", "x", "--pvc-name=y", "--image-path=IMG"], "cannot use --pvc-name and args"),
    (["pvc", "x", "--image-path=IMG", "--default-instancetype-kind=k"],
     "--default-instancetype must be provided with --default-instancetype-kind"),
    (["pvc", "x", "--image-path=IMG", "--default-preference-kind=k"],
     "--default-preference must be provided with --default-preference-kind"),
    (["pvc", "x", "--image-path=IMG", "--no-create", "--default-preference=p"],
     "--default-instancetype and --default-preference cannot be used with --no-create"),
    (["pvc", "x", "--image-path=/no/such/file"], "open /no/such/file: no such file or directory"),
]


@pytest.mark.parametrize(("args", "message"), ARGUMENT_ERRORS, ids=[m for _, m in ARGUMENT_ERRORS])
def test_argument_errors(cluster: Cluster, tmp_path: Path, args: list[str], message: str) -> None:
    image = tmp_path / "img"
    image.write_bytes(b"\0" * 4096)
    done = image_upload(cluster, *[a.replace("IMG", str(image)) for a in args])
    assert refused(done) == message


def test_target_errors(cluster: Cluster, ns: str, image_corpus: Corpus) -> None:
    """What virtctl refuses once it reads the cluster; nothing is left created by a refusal."""
    image = str(image_corpus.path("raw"))

    def run(*args: str) -> str:
        return refused(image_upload(cluster, *args, "-n", ns, f"--image-path={image}"))

    assert run("pvc", "missing", "--no-create") == 'persistentvolumeclaims "missing" not found'
    assert run("pvc", "nosize") == "when creating a resource, the size must be specified"
    assert run("dv", "ro", "--size=1Gi", "--access-mode=ReadOnlyMany") == \
        "cannot upload to a readonly volume, use either ReadWriteOnce or ReadWriteMany if supported"
    assert run("pvc", "ro", "--size=1Gi", "--access-mode=ReadOnlyMany") == \
        "cannot upload to a readonly volume, use either ReadWriteOnce or ReadWriteMany if supported"
    assert run("pvc", "sc", "--size=1Gi", "--storage-class=nope") == 'storageclasses.storage.k8s.io "nope" not found'
    assert run("pvc", "big", "--size=huge") == ("validation failed for size=huge: quantities must match the regular "
                                               "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    assert cluster.kubectl_json("get", "pvc,dv", "-n", ns)["items"] == []

    plain = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "plain", "namespace": ns},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Mi"}}}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(plain))
    assert run("pvc", "plain", "--size=1Gi") == "PVC plain not available for upload"
    assert run("dv", "plain", "--size=1Gi") == f"No DataVolume is associated with the existing PVC {ns}/plain"
    ok(image_upload(cluster, "pvc", "disk", "-n", ns, "--size=100Mi", "--wait-secs=120",
                    f"--image-path={image_corpus.path('raw.xz')}"))
    assert refused(image_upload(cluster, "pvc", "disk", "-n", ns, f"--archive-path={image}")) == \
        "PVC disk already successfully imported/cloned/updated"


def test_refusals_that_need_a_cluster_state(cluster: Cluster, ns: str, image_corpus: Corpus) -> None:
    """A DataVolume waiting for its first consumer needs --force-bind; an image larger than the volume is the
    server's 400, reported at once (no retries: it would not fit the next time either); archive content only
    into an archive PVC."""
    wffc = unique("wffc")
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": wffc},
        "provisioner": "kubevirt.io/hostpath-provisioner", "volumeBindingMode": "WaitForFirstConsumer"}))
    raw = str(image_corpus.path("raw"))
    done = image_upload(cluster, "dv", "later", "-n", ns, "--size=100Mi", f"--storage-class={wffc}",
                        f"--image-path={raw}")
    assert refused(done) == ("cannot upload to DataVolume in WaitForFirstConsumer phase, make sure the PVC is Bound, "
                             "or use force-bind flag")
    forced = image_upload(cluster, "dv", "forced", "-n", ns, "--size=100Mi", f"--storage-class={wffc}",
                          "--force-bind", f"--image-path={raw}")
    ok(forced)
    dv = cluster.kubectl_json("get", "dv", "forced", "-n", ns)
    assert dv["metadata"]["annotations"]["cdi.kubevirt.io/storage.bind.immediate.requested"] == ""
    assert_disk(cluster, ns, "forced", image_corpus, "raw")

    done = image_upload(cluster, "pvc", "small", "-n", ns, "--size=32Mi", f"--image-path={raw}")
    assert refused(done).startswith("unexpected return value 400, Saving stream failed: effective image size is "
                                    "larger than the reported available storage")
    assert "Upload attempt" not in done.stderr
    assert refused(image_upload(cluster, "pvc", "small", "-n", ns, f"--archive-path={raw}")) == \
        "PVC small doesn't have archive contentType annotation"


def test_processing_failure_is_reported(cluster: Cluster, ns: str, image_corpus: Corpus) -> None:
    """Processing refuses the image: the command says why instead of waiting. Usually the bytes are all in
    first (async: 200) and the upload pod restarts; a server that has already refused them by the time the
    body ends answers 400 instead."""
    bad = str(image_corpus.path("qcow2-backing-file"))
    done = image_upload(cluster, "dv", "backed", "-n", ns, "--size=100Mi", f"--image-path={bad}")
    error = refused(done)
    if DONE in done.stdout:
        assert error.startswith("Processing failed and the upload pod restarted, ready for another upload: ")
    else:
        assert error.startswith("unexpected return value 400, Saving stream failed: ")
    assert "backing file" in error


# ---- RBAC and retries ----------------------------------------------------------------------------------

def test_user_without_upload_token_permission_is_refused(cluster: Cluster, ns: str, image_corpus: Corpus) -> None:
    """A user who may create volumes but not uploadtokenrequests gets virtctl's error from the API; with the
    `edit` role (CDI aggregates create on uploadtokenrequests into it) the same upload goes through."""
    user = unique("uploader")
    kubeconfig = cluster.new_user(user, ns)
    cluster.kubectl("create", "role", "volumes", "-n", ns, "--verb=get,list,watch,create,update,patch",
                    "--resource=persistentvolumeclaims,datavolumes.cdi.kubevirt.io,events")
    cluster.kubectl("create", "rolebinding", "volumes", "-n", ns, "--role=volumes", f"--user={user}")
    raw = str(image_corpus.path("raw"))
    done = image_upload(cluster, "dv", "mine", "--size=100Mi", f"--image-path={raw}", kubeconfig=kubeconfig)
    assert refused(done) == (f'uploadtokenrequests.upload.cdi.kubevirt.io is forbidden: User "{user}" cannot create '
                             f'resource "uploadtokenrequests" in API group "upload.cdi.kubevirt.io" in the namespace '
                             f'"{ns}"')
    cluster.kubectl("create", "rolebinding", "edit", "-n", ns, "--clusterrole=edit", f"--user={user}")
    stdout = ok(image_upload(cluster, "dv", "mine", f"--image-path={raw}", kubeconfig=kubeconfig))
    assert f"Using existing PVC {ns}/mine" in stdout
    assert_disk(cluster, ns, "mine", image_corpus, "raw")


def test_retry_after_a_connection_cut_mid_upload(cluster: Cluster, ns: str, proxy_url: str,
                                                 image_corpus: Corpus) -> None:
    """The connection to the proxy breaks after 8 MiB of the body: the command tries again with a new token
    once the upload server is ready, and the volume holds the whole image."""
    parts = urlsplit(proxy_url)
    with cutting_relay((parts.hostname or "", parts.port or 443), cut_after=8 << 20) as relay:
        relayed = f"https://127.0.0.1:{relay.port}"
        done = image_upload(cluster, "dv", "flaky", "-n", ns, "--size=100Mi", f"--uploadproxy-url={relayed}",
                            f"--image-path={image_corpus.path('raw')}")
        assert relay.cut == 1
    stdout = ok(done)
    assert "Upload attempt 1 failed: " in done.stderr and "retrying in 1s" in done.stderr
    assert f"Uploading data to {relayed}" in stdout
    assert cluster.kubectl_json("get", "dv", "flaky", "-n", ns)["status"]["phase"] == "Succeeded"
    assert_disk(cluster, ns, "flaky", image_corpus, "raw")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FixedPortCluster(Cluster):
    """`pycdi up` on fixed ports, as a user runs it (6443 and 31001 by default): a restart keeps its addresses."""

    api_port: int = 0
    proxy_port: int = 0

    def start(self) -> FixedPortCluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
        self.log_path = self.data_dir / "pycdi-up.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pycdi", "up", "--data-dir", str(self.data_dir), "--api-port",
                 str(self.api_port), "--upload-proxy-port", str(self.proxy_port)],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.extra_env}, start_new_session=True)
        self.wait_ready()
        return self


def test_a_cluster_restarted_mid_upload_completes_on_retry(tmp_path: Path, image_corpus: Corpus) -> None:
    """`pycdi up` stops while the command is sending (over a paced link) and starts again: the command retries
    through the outage (API and proxy unreachable), waits for the upload server and completes the DataVolume."""
    own = FixedPortCluster(tmp_path / "data", api_port=free_port(), proxy_port=free_port()).start()
    try:
        ns = unique("restart")
        own.kubectl("create", "namespace", ns)
        with cutting_relay(("127.0.0.1", own.proxy_port), cut_after=1 << 62, cuts=0, rate=8 << 20) as relay:
            env = {**os.environ, "KUBECONFIG": str(own.kubeconfig)}
            proc = subprocess.Popen(
                [sys.executable, "-m", "pycdi", "image-upload", "dv", "disk", "-n", ns, "--size=100Mi", "--retry=10",
                 f"--uploadproxy-url=https://127.0.0.1:{relay.port}", f"--image-path={image_corpus.path('raw')}"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            try:
                relay.wait_carried(16 << 20)
                assert own.stop() == 0
                own.start()
                stdout, stderr = proc.communicate(timeout=300)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
        assert "Upload attempt 1 failed: " in stderr
        assert own.kubectl_json("get", "dv", "disk", "-n", ns)["status"]["phase"] == "Succeeded"
        assert_disk(own, ns, "disk", image_corpus, "raw")
    finally:
        own.stop()
        release_loop_devices(own.data_dir)
