"""Clone token exchange (upstream's ensureExtendedTokenDV / ensureExtendedTokenPVC): the admission's short-lived
token on a cross-namespace clone DataVolume, checked, becomes a long-lived one bound to the DataVolume's UID, then
another bound to its claim's UID, which is what the clone populator and the host-assisted clone accept."""

from __future__ import annotations

from typing import Any

from ...api import clone as cl
from ...api import constants as c
from ...api.clonetoken import CloneTokens, InvalidCloneToken
from ...kube.client import KubeClient
from ...kube.events import EventRecorder
from ...kube.resources import DATA_VOLUMES, PERSISTENT_VOLUME_CLAIMS
from ..clone import common as cm

Obj = dict[str, Any]


class TokenExchange:
    def __init__(self, client: KubeClient, recorder: EventRecorder, tokens: CloneTokens | None) -> None:
        self.client = client
        self.recorder = recorder
        self.tokens = tokens

    async def for_data_volume(self, dv: Obj) -> bool:
        """ensureExtendedTokenDV: the admission's short token, checked, becomes a long one bound to the DataVolume's
        UID. True when this pass must stop: the DataVolume was just annotated (its update comes back), or its token
        is missing or not valid (an event says so)."""
        ann = cm.annots(dv)
        if ann.get(c.ANN_EXTENDED_CLONE_TOKEN):
            return False
        token = ann.get(c.ANN_CLONE_TOKEN)
        if not token or self.tokens is None:
            await self.recorder.warning(dv, cl.ERR_UNABLE_TO_CLONE, "clone token missing" if not token
                                        else "no signing key configured to check clone tokens")
            return True
        try:
            payload = self.tokens.validate(token)
            extended = self.tokens.issue(payload.with_params(uid=cm.uid_of(dv)), extended=True)
        except InvalidCloneToken as e:
            await self.recorder.warning(dv, cl.ERR_UNABLE_TO_CLONE, f"clone token is not valid: {e}")
            return True
        await self.client.patch(DATA_VOLUMES, cm.name_of(dv),
                                {"metadata": {"annotations": {c.ANN_EXTENDED_CLONE_TOKEN: extended}}},
                                cm.namespace_of(dv))
        return True

    async def for_claim(self, dv: Obj, pvc: Obj) -> None:
        """ensureExtendedTokenPVC: the DataVolume's extended token, re-bound to the claim's UID."""
        token = cm.annots(dv).get(c.ANN_EXTENDED_CLONE_TOKEN)
        if not token or self.tokens is None:
            return
        try:
            payload = self.tokens.validate(token, extended=True)
        except InvalidCloneToken as e:
            await self.recorder.warning(dv, cl.ERR_UNABLE_TO_CLONE, f"clone token is not valid: {e}")
            return
        if payload.params.get("uid") != cm.uid_of(dv):
            await self.recorder.warning(dv, cl.ERR_UNABLE_TO_CLONE, "token uid mismatch")
            return
        extended = self.tokens.issue(payload.with_params(uid=cm.uid_of(pvc)), extended=True)
        updated = await self.client.patch(PERSISTENT_VOLUME_CLAIMS, cm.name_of(pvc), {"metadata": {"annotations": {
            c.ANN_EXTENDED_CLONE_TOKEN: extended}}}, cm.namespace_of(pvc))
        pvc["metadata"] = updated["metadata"]
