"""Authentication: the admin token, per-user bearer tokens and ServiceAccount JWTs, resolved to a `UserInfo`."""

from __future__ import annotations

import base64
import hmac
from typing import Any

from .rbac import UserInfo
from .store import Event, Store
from .tokens import DEFAULT_ISSUER, verify_service_account_token

ADMIN_USER = "admin"
#: Users made by `pycdi user create` are Secrets of this type in kube-system: data.user and data.token.
USER_TOKEN_SECRET_TYPE = "pycdi.io/user-token"
USER_TOKEN_NAMESPACE = "kube-system"
AUTHENTICATED = "system:authenticated"


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(name=f"system:serviceaccount:{namespace}:{name}", uid=uid,
                    groups=("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED))


class Authenticator:
    """Maps a bearer token to a user, or None (the request then gets 401)."""

    def __init__(self, store: Store, admin_token: str, sa_public_key_pem: bytes) -> None:
        self._store = store
        self._admin_token = admin_token
        self._sa_public_key = sa_public_key_pem
        self._users: dict[str, UserInfo] | None = None
        store.add_listener(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.key == "core/secrets" and event.namespace == USER_TOKEN_NAMESPACE:
            self._users = None

    def _user_tokens(self) -> dict[str, UserInfo]:
        if self._users is None:
            users: dict[str, UserInfo] = {}
            for secret in self._store.iter_objects("core/secrets", USER_TOKEN_NAMESPACE):
                if secret.get("type") != USER_TOKEN_SECRET_TYPE:
                    continue
                data: dict[str, Any] = secret.get("data") or {}
                try:
                    token = base64.b64decode(data.get("token", "")).decode()
                    name = base64.b64decode(data.get("user", "")).decode()
                except ValueError:
                    continue
                if token and name:
                    uid = secret["metadata"].get("uid", "")
                    users[token] = UserInfo(name=name, uid=uid, groups=(AUTHENTICATED,))
            self._users = users
        return self._users

    def authenticate(self, authorization: str | None) -> UserInfo | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        token = token.strip()
        if hmac.compare_digest(token, self._admin_token):
            return UserInfo(name=ADMIN_USER, groups=("system:masters", AUTHENTICATED))
        user = self._user_tokens().get(token)
        if user is not None:
            return user
        if token.count(".") == 2:
            return self._service_account(token)
        return None

    def _service_account(self, token: str) -> UserInfo | None:
        # As kube-apiserver (--api-audiences defaults to the issuer): a token minted for another audience, such as
        # a vault or an upload service, is not a credential for this API.
        claims = verify_service_account_token(self._sa_public_key, token, audiences=[DEFAULT_ISSUER],
                                              issuer=DEFAULT_ISSUER)
        if not claims:
            return None
        k8s = claims.get("kubernetes.io") or {}
        namespace = k8s.get("namespace", "")
        sa = k8s.get("serviceaccount") or {}
        current = self._store.get("core/serviceaccounts", namespace, sa.get("name", ""))
        # A token outlives neither its ServiceAccount nor the object it was bound to.
        if current is None or current["metadata"].get("uid") != sa.get("uid"):
            return None
        for kind, key in (("secret", "core/secrets"), ("pod", "core/pods")):
            bound = k8s.get(kind)
            if bound:
                obj = self._store.get(key, namespace, bound.get("name", ""))
                if obj is None or obj["metadata"].get("uid") != bound.get("uid"):
                    return None
        return service_account_user(namespace, sa.get("name", ""), sa.get("uid", ""))
