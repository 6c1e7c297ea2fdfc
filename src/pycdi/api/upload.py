"""Upload names shared by the token API, the upload controller, proxy and server and `pycdi image-upload`."""

from __future__ import annotations

import hashlib
from typing import Final

from .constants import POD_RUNTIME_DIR
from .groups import UPLOAD_GROUP
from .meta_schemas import kind_schema
from .schema_dsl import Schema, obj, string

# ---- UploadTokenRequest (`upload.cdi.kubevirt.io/v1beta1`, namespaced, create only) --------------------------
UPLOAD_TOKEN_VERSION: Final = "v1beta1"
UPLOAD_TOKEN_KIND: Final = "UploadTokenRequest"
UPLOAD_TOKEN_PLURAL: Final = "uploadtokenrequests"
UPLOAD_TOKEN_SINGULAR: Final = "uploadtokenrequest"
UPLOAD_TOKEN_SHORT_NAMES: Final = ("utr", "utrs")
UPLOAD_TOKEN_API_VERSION: Final = f"{UPLOAD_GROUP}/{UPLOAD_TOKEN_VERSION}"
#: The JWT issuer of upload tokens (`common.UploadTokenIssuer`).
TOKEN_ISSUER: Final = "cdi-apiserver"
#: `token.OperationUpload`.
OPERATION_UPLOAD: Final = "Upload"
#: Tokens live 5 minutes; the proxy accepts 10 s of clock skew (`uploadTokenLeeway`).
TOKEN_LIFETIME_SECONDS: Final = 300
TOKEN_LEEWAY_SECONDS: Final = 10

# ---- paths (`pkg/common/common.go`) ----------------------------------------------------------------------
UPLOAD_PATH_SYNC: Final = "/v1beta1/upload"
UPLOAD_PATH_ASYNC: Final = "/v1beta1/upload-async"
UPLOAD_FORM_SYNC: Final = "/v1beta1/upload-form"
UPLOAD_FORM_ASYNC: Final = "/v1beta1/upload-form-async"
UPLOAD_ARCHIVE_PATH: Final = "/v1beta1/upload-archive"
UPLOAD_ARCHIVE_ALPHA_PATH: Final = "/v1alpha1/upload-archive"
SYNC_UPLOAD_PATHS: Final = (UPLOAD_PATH_SYNC, "/v1alpha1/upload")
ASYNC_UPLOAD_PATHS: Final = (UPLOAD_PATH_ASYNC, "/v1alpha1/upload-async")
SYNC_FORM_PATHS: Final = (UPLOAD_FORM_SYNC, "/v1alpha1/upload-form")
ASYNC_FORM_PATHS: Final = (UPLOAD_FORM_ASYNC, "/v1alpha1/upload-form-async")
ARCHIVE_UPLOAD_PATHS: Final = (UPLOAD_ARCHIVE_PATH, UPLOAD_ARCHIVE_ALPHA_PATH)
#: What the proxy serves (the archive paths are the server's: the proxy rewrites to them).
PROXY_PATHS: Final = SYNC_UPLOAD_PATHS + ASYNC_UPLOAD_PATHS + SYNC_FORM_PATHS + ASYNC_FORM_PATHS
HEALTHZ_PATH: Final = "/healthz"
#: Header an upload client may set to name the content type explicitly (`UploadContentTypeHeader`).
CONTENT_TYPE_HEADER: Final = "x-cdi-content-type"
#: The multipart field holding the file on the form endpoints.
FORM_FILE_FIELD: Final = "file"

# ---- the upload worker pod (`pkg/controller/upload-controller.go`) ---------------------------------------
UPLOAD_POD_PREFIX: Final = "cdi-upload"
UPLOAD_SERVER_PORT: Final = 8443
UPLOAD_CONTAINER_NAME: Final = "cdi-upload-server"
UPLOAD_SERVER_LABEL: Final = "cdi-upload-server"
#: The TLS client name (certificate CN) the upload server accepts uploads from: the proxy's client certificate.
UPLOAD_CLIENT_NAME: Final = "client.upload-server.cdi.kubevirt.io"
ANN_UPLOAD_POD: Final = "cdi.kubevirt.io/storage.uploadPodName"
ANN_UPLOAD_CLIENT_NAME: Final = "cdi.kubevirt.io/uploadClientName"
ANN_CREATED_BY_UPLOAD: Final = "cdi.kubevirt.io/storage.createdByUploadController"
LABEL_UPLOAD_TARGET: Final = "cdi.kubevirt.io/uploadTarget"
LABEL_SERVICE: Final = "service"
#: Where the pod's serving certificate, key and the client CA are mounted (a Secret named as the pod).
TLS_MOUNT_PATH: Final = "/etc/tls/"
#: Embedded clusters only: the container path of the Unix socket the upload server also listens on, in the pod's
#: private runtime directory (the node agent maps `POD_RUNTIME_DIR`; plain HTTP, access is the directory's
#: permissions). The upload proxy on the same machine uses it instead of mTLS over loopback TCP.
LOCAL_SOCKET: Final = f"{POD_RUNTIME_DIR}/uploadserver.sock"

# ---- the upload TLS material CDI keeps in its namespace (as the operator names it upstream) --------------
#: The CA that signs each upload server's serving certificate (Secret: tls.crt, tls.key).
SERVER_SIGNER_SECRET: Final = "cdi-uploadserver-signer"
#: Its certificate, for whoever verifies upload servers (ConfigMap key `ca-bundle.crt`).
SERVER_SIGNER_BUNDLE: Final = "cdi-uploadserver-signer-bundle"
#: The CA that signs the proxy's client certificate; upload servers trust only it.
CLIENT_SIGNER_SECRET: Final = "cdi-uploadserver-client-signer"
CLIENT_SIGNER_BUNDLE: Final = "cdi-uploadserver-client-signer-bundle"
#: The proxy's client certificate (Secret: tls.crt, tls.key).
CLIENT_CERT_SECRET: Final = "cdi-uploadserver-client-cert"
BUNDLE_KEY: Final = "ca-bundle.crt"
DEFAULT_CDI_NAMESPACE: Final = "cdi"


def upload_token_request_schema() -> Schema:
    return kind_schema("UploadTokenRequest is the CR used to initiate a CDI upload", {
        "spec": obj({"pvcName": string(description="PvcName is the name of the PVC to upload to")}, ["pvcName"]),
        "status": obj({"token": string(
            description='Token is a JWT token to be inserted in "Authentication Bearer header"')}),
    }, ("spec",))


def service_name(pod_name: str) -> str:
    """`naming.GetServiceNameFromResourceName`: a DNS-1035 label (63 characters at most) for the pod's name."""
    if len(pod_name) <= 63:
        return pod_name
    digest = hashlib.sha256(pod_name.encode()).hexdigest()[:8]
    return f"{pod_name[:54]}-{digest}"


def server_hostname(pod_name: str, namespace: str) -> str:
    """The name an upload server's certificate is issued for (its Service's DNS name, as upstream's URL)."""
    return f"{service_name(pod_name)}.{namespace}.svc"
