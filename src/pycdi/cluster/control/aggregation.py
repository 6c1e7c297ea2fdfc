"""ClusterRole aggregation: roles with an aggregationRule get the union of the rules of the roles they select."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from ..apiserver.rbac import aggregated_rules
from ..apiserver.service import WriteContext
from ..apiserver.store import Event
from .loops import Loop, builtin, meta

CLUSTERROLES_KEY = "rbac.authorization.k8s.io/clusterroles"


class AggregationLoop(Loop):
    """Writes aggregated rules into `rules`, as kube-controller-manager's clusterrole-aggregation controller does.

    The authorizer already aggregates at evaluation time; this loop makes `kubectl get/describe clusterrole`
    show what the role grants.
    """

    name = "clusterrole-aggregation"

    def on_event(self, event: Event) -> None:
        if event.key != CLUSTERROLES_KEY:
            return
        # Any role change may change what an aggregating role selects: re-check every aggregating role.
        for role in self.store.iter_objects(CLUSTERROLES_KEY):
            if role.get("aggregationRule"):
                self.queue.add(str(meta(role).get("name")))

    def initial_keys(self) -> Iterable[Hashable]:
        return [str(meta(r).get("name")) for r in self.store.iter_objects(CLUSTERROLES_KEY)
                if r.get("aggregationRule")]

    async def reconcile(self, key: Hashable) -> None:
        role = self.store.get(CLUSTERROLES_KEY, "", str(key))
        if role is None or not role.get("aggregationRule"):
            return
        rules = aggregated_rules(role, list(self.store.iter_objects(CLUSTERROLES_KEY)))
        if rules == (role.get("rules") or []):
            return
        role["rules"] = rules
        info = builtin(self.service, "rbac.authorization.k8s.io", "clusterroles")
        await self.service.update(info, "", str(key), role, WriteContext(field_manager="clusterrole-aggregator"),
                                  require_rv=True)
