"""Default ClusterRoles and ClusterRoleBindings: kube bootstrap policy plus CDI/KubeVirt/snapshot roles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
TO_ADMIN = "rbac.authorization.k8s.io/aggregate-to-admin"
TO_EDIT = "rbac.authorization.k8s.io/aggregate-to-edit"
TO_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"

READ = ("get", "list", "watch")
# kube's bootstrap policy writes edit's write verbs separately from the read verbs (view has those).
WRITE = ("create", "delete", "deletecollection", "patch", "update")
READ_WRITE = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


def _meta(name: str, labels: dict[str, str] | None, bootstrap: bool) -> dict[str, Any]:
    # Bootstrap objects carry kube's label and the autoupdate annotation (reconciled at start-up).
    meta: dict[str, Any] = {"name": name, "labels": {**(BOOTSTRAP_LABELS if bootstrap else {}),
                                                     **(labels or {})}}
    if bootstrap:
        meta["annotations"] = dict(AUTOUPDATE)
    return meta


def _rule(verbs: Sequence[str], groups: Sequence[str] = (), resources: Sequence[str] = (),
          urls: Sequence[str] = (), names: Sequence[str] = ()) -> dict[str, Any]:
    rule: dict[str, Any] = {"verbs": list(verbs)}
    if resources:
        rule["apiGroups"] = list(groups)
        rule["resources"] = list(resources)
    if names:
        rule["resourceNames"] = list(names)
    if urls:
        rule["nonResourceURLs"] = list(urls)
    return rule


def _cluster_role(name: str, rules: list[dict[str, Any]] | None = None, *,
                  labels: dict[str, str] | None = None, aggregate_from: str | None = None,
                  bootstrap: bool = True) -> dict[str, Any]:
    meta = _meta(name, labels, bootstrap)
    role: dict[str, Any] = {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRole", "metadata": meta,
                            "rules": rules or []}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {aggregate_from: "true"}}]}
    return role


def _binding(name: str, role: str, groups: Sequence[str] = (), users: Sequence[str] = (), *,
             bootstrap: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]
    subjects += [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users]
    meta = _meta(name, labels, bootstrap)
    return {"apiVersion": RBAC_API_VERSION, "kind": "ClusterRoleBinding", "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects}


def _kube_roles() -> list[dict[str, Any]]:
    """The parts of kube's bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy) we serve."""
    return [
        _cluster_role("cluster-admin", [_rule(["*"], ["*"], ["*"]), _rule(["*"], urls=["*"])]),
        _cluster_role("admin", aggregate_from=TO_ADMIN),
        _cluster_role("edit", labels={TO_ADMIN: "true"}, aggregate_from=TO_EDIT),
        _cluster_role("view", labels={TO_EDIT: "true"}, aggregate_from=TO_VIEW),
        _cluster_role("system:aggregate-to-admin", [
            _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
            _rule(READ_WRITE, ["rbac.authorization.k8s.io"], ["rolebindings", "roles"]),
        ], labels={TO_ADMIN: "true"}),
        _cluster_role("system:aggregate-to-edit", [
            _rule(READ, [""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets",
                               "services/proxy"]),
            _rule(["impersonate"], [""], ["serviceaccounts"]),
            _rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
            _rule(["create"], [""], ["pods/eviction"]),
            _rule(WRITE, [""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                                "replicationcontrollers/scale", "secrets", "serviceaccounts", "services",
                                "services/proxy"]),
            _rule(["create"], [""], ["serviceaccounts/token"]),
            _rule(WRITE, ["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale",
                                    "replicasets", "replicasets/scale", "statefulsets",
                                    "statefulsets/scale"]),
            _rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
            _rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
            _rule(WRITE, ["extensions"], ["daemonsets", "deployments", "deployments/rollback",
                                          "deployments/scale", "ingresses", "networkpolicies", "replicasets",
                                          "replicasets/scale", "replicationcontrollers/scale"]),
            _rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
            _rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
            _rule(READ_WRITE, ["coordination.k8s.io"], ["leases"]),
        ], labels={TO_EDIT: "true"}),
        _cluster_role("system:aggregate-to-view", [
            _rule(READ, [""], ["configmaps", "endpoints", "persistentvolumeclaims",
                               "persistentvolumeclaims/status", "pods", "replicationcontrollers",
                               "replicationcontrollers/scale", "serviceaccounts", "services",
                               "services/status"]),
            _rule(READ, [""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log",
                               "pods/status", "replicationcontrollers/status", "resourcequotas",
                               "resourcequotas/status"]),
            _rule(READ, [""], ["namespaces"]),
            _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
            _rule(READ, ["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
                                   "deployments/scale", "deployments/status", "replicasets",
                                   "replicasets/scale", "replicasets/status", "statefulsets",
                                   "statefulsets/scale", "statefulsets/status"]),
            _rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
            _rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
            _rule(READ, ["extensions"], ["daemonsets", "daemonsets/status", "deployments",
                                         "deployments/scale", "deployments/status", "ingresses",
                                         "ingresses/status", "networkpolicies",
                                         "replicasets", "replicasets/scale", "replicasets/status",
                                         "replicationcontrollers/scale"]),
            _rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
            _rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
        ], labels={TO_VIEW: "true"}),
        _cluster_role("system:discovery", [
            _rule(["get"], urls=["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                 "/openapi/*", "/readyz", "/version", "/version/"]),
        ]),
        _cluster_role("system:basic-user", [
            _rule(["create"], ["authorization.k8s.io"],
                  ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
        ]),
        _cluster_role("system:public-info-viewer", [
            _rule(["get"], urls=["/healthz", "/livez", "/readyz", "/version", "/version/"]),
        ]),
        _cluster_role("system:auth-delegator", [
            _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
            _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
        ]),
        _cluster_role("system:monitoring", [
            _rule(["get"], urls=["/healthz", "/healthz/*", "/livez", "/livez/*", "/metrics", "/metrics/slis",
                                 "/readyz", "/readyz/*"]),
        ]),
        _cluster_role("system:service-account-issuer-discovery", [
            _rule(["get"], urls=["/.well-known/openid-configuration", "/openid/v1/jwks"]),
        ]),
    ]


CDI_LABELS = {"cdi.kubevirt.io": ""}


def _cdi_roles() -> list[dict[str, Any]]:
    """As CDI's operator installs them (pkg/operator/resources/cluster/rbac.go)."""
    cdi = "cdi.kubevirt.io"
    admin_edit = [
        _rule(["*"], [cdi], ["datavolumes", "dataimportcrons", "datasources", "volumeimportsources",
                             "volumeuploadsources", "volumeclonesources"]),
        _rule(["create"], [cdi], ["datavolumes/source"]),
        _rule(["*"], ["upload.cdi.kubevirt.io"], ["uploadtokenrequests"]),
    ]
    view = [
        _rule(READ, [cdi], ["cdiconfigs", "dataimportcrons", "datasources", "datavolumes", "objecttransfers",
                            "storageprofiles", "volumeimportsources", "volumeuploadsources",
                            "volumeclonesources"]),
        # Upstream lets viewers clone from a namespace they can see; we keep that.
        _rule(["create"], [cdi], ["datavolumes/source"]),
    ]
    return [
        _cluster_role("cdi.kubevirt.io:admin", admin_edit, labels={**CDI_LABELS, TO_ADMIN: "true"},
                      bootstrap=False),
        _cluster_role("cdi.kubevirt.io:edit", [dict(r) for r in admin_edit],
                      labels={**CDI_LABELS, TO_EDIT: "true"}, bootstrap=False),
        _cluster_role("cdi.kubevirt.io:view", view, labels={**CDI_LABELS, TO_VIEW: "true"}, bootstrap=False),
        _cluster_role("cdi.kubevirt.io:config-reader",
                      [_rule(READ, [cdi], ["cdiconfigs", "storageprofiles"])],
                      labels=dict(CDI_LABELS), bootstrap=False),
    ]


KUBEVIRT_LABELS = {"kubevirt.io": ""}


def _kubevirt_roles() -> list[dict[str, Any]]:
    """As virt-operator installs them (pkg/virt-operator/resource/generate/rbac/cluster.go)."""
    sub = "subresources.kubevirt.io"
    vm_kinds = ["virtualmachines", "virtualmachineinstances", "virtualmachineinstancepresets",
                "virtualmachineinstancereplicasets", "virtualmachineinstancemigrations"]
    snapshots = ["virtualmachinesnapshots", "virtualmachinesnapshotcontents", "virtualmachinerestores"]
    instancetypes = ["virtualmachineinstancetypes", "virtualmachineclusterinstancetypes",
                     "virtualmachinepreferences", "virtualmachineclusterpreferences"]
    vmi_read = ["virtualmachineinstances/console", "virtualmachineinstances/vnc",
                "virtualmachineinstances/guestosinfo", "virtualmachineinstances/filesystemlist",
                "virtualmachineinstances/userlist"]
    vmi_update = ["virtualmachineinstances/pause", "virtualmachineinstances/unpause",
                  "virtualmachineinstances/addvolume", "virtualmachineinstances/removevolume",
                  "virtualmachineinstances/freeze", "virtualmachineinstances/unfreeze",
                  "virtualmachineinstances/softreboot"]
    vm_update = ["virtualmachines/start", "virtualmachines/stop", "virtualmachines/restart"]
    edit_verbs = ["get", "delete", "create", "update", "patch", "list", "watch"]
    admin_verbs = [*edit_verbs, "deletecollection"]

    def writer(verbs: list[str]) -> list[dict[str, Any]]:
        return [
            _rule(["get"], [sub], vmi_read),
            _rule(["update"], [sub], vmi_update),
            _rule(["update"], [sub], vm_update),
            _rule(verbs, ["kubevirt.io"], vm_kinds),
            _rule(verbs, ["snapshot.kubevirt.io"], snapshots),
            _rule(verbs, ["instancetype.kubevirt.io"], instancetypes),
        ]

    view = [
        _rule(["get"], [sub], ["virtualmachineinstances/guestosinfo",
                               "virtualmachineinstances/filesystemlist", "virtualmachineinstances/userlist"]),
        _rule(READ, ["kubevirt.io"], vm_kinds),
        _rule(READ, ["snapshot.kubevirt.io"], snapshots),
        _rule(READ, ["instancetype.kubevirt.io"], instancetypes),
    ]
    return [
        _cluster_role("kubevirt.io:default", [_rule(["get", "list"], [sub], ["version"])],
                      labels=dict(KUBEVIRT_LABELS)),
        _cluster_role("kubevirt.io:admin", writer(admin_verbs), labels={**KUBEVIRT_LABELS, TO_ADMIN: "true"},
                      bootstrap=False),
        _cluster_role("kubevirt.io:edit",
                      [*writer(edit_verbs), _rule(["get", "list"], ["kubevirt.io"], ["kubevirts"])],
                      labels={**KUBEVIRT_LABELS, TO_EDIT: "true"}, bootstrap=False),
        _cluster_role("kubevirt.io:view", view, labels={**KUBEVIRT_LABELS, TO_VIEW: "true"}, bootstrap=False),
    ]


def _snapshot_roles() -> list[dict[str, Any]]:
    """VolumeSnapshot access for namespace users.

    The external-snapshotter manifests ship no aggregated roles; distributions add them (OpenShift's
    csi-snapshot-controller-operator: `aggregate-snapshots-to-admin/view`). These follow that shape.
    """
    group = ["snapshot.storage.k8s.io"]
    return [
        _cluster_role("system:aggregate-snapshots-to-admin", [_rule(READ_WRITE, group, ["volumesnapshots"])],
                      labels={TO_ADMIN: "true", TO_EDIT: "true"}),
        _cluster_role("system:aggregate-snapshots-to-view", [_rule(READ, group, ["volumesnapshots"])],
                      labels={TO_VIEW: "true"}),
    ]


def default_cluster_roles() -> list[dict[str, Any]]:
    """Every ClusterRole a fresh cluster starts with (new dicts on each call)."""
    return [*_kube_roles(), *_cdi_roles(), *_kubevirt_roles(), *_snapshot_roles()]


def default_cluster_role_bindings() -> list[dict[str, Any]]:
    """Every ClusterRoleBinding a fresh cluster starts with (new dicts on each call)."""
    return [
        _binding("cluster-admin", "cluster-admin", ["system:masters"]),
        _binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _binding("system:public-info-viewer", "system:public-info-viewer",
                 ["system:authenticated", "system:unauthenticated"]),
        _binding("system:monitoring", "system:monitoring", ["system:monitoring"]),
        _binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                 ["system:serviceaccounts"]),
        # Upstream CDI binds "system:serviceaccount" (singular, matching no real group); kept as shipped.
        _binding("cdi.kubevirt.io:config-reader", "cdi.kubevirt.io:config-reader",
                 ["system:authenticated", "system:serviceaccount"], bootstrap=False, labels=dict(CDI_LABELS)),
        _binding("kubevirt.io:default", "kubevirt.io:default",
                 ["system:authenticated", "system:unauthenticated"],
                 bootstrap=False, labels=dict(KUBEVIRT_LABELS)),
    ]
