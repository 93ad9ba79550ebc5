"""Live dashboard socket: members of the host's store join the store's group
(`apps.core.live.store_group`, where every domain app publishes).

Messages to the browser (JSON): `snapshot` on connect, then `counters` (today's events by type),
`training.progress` (from the recommendations app) and `notification` (only to its recipients).

Access is checked at connect and revoked live: each socket also joins its user's group on the
store (`apps.core.live.member_group`); an `access.revoked` message there (member removed) or on
the store group (store suspended) closes it with 4403, as a refused connect would.
"""

from __future__ import annotations

from apps.core.live import member_group, store_group
from apps.core.websockets import CLOSE_FORBIDDEN, TenantConsumer
from apps.dashboard.selectors import live_snapshot
from apps.users.permissions import can
from apps.users.selectors import membership_role


class DashboardConsumer(TenantConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        role = None
        if user is not None and user.is_authenticated:
            # Joined before the membership check: a removal committing after the check still
            # reaches this socket.
            self.member_group_name = member_group(self.tenant.schema_name, user.pk)
            await self.channel_layer.group_add(self.member_group_name, self.channel_name)
            role = await self.in_tenant(membership_role, user=user, tenant=self.tenant)
        if not can(role, "view"):
            if hasattr(self, "member_group_name"):
                await self.channel_layer.group_discard(self.member_group_name, self.channel_name)
                del self.member_group_name
            # Accept first so the browser sees the close code, not a bare handshake failure.
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user_id = str(user.pk)
        self.group_name = store_group(self.tenant.schema_name)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        snapshot = await self.in_tenant(live_snapshot)
        await self.send_json(
            {
                "type": "snapshot",
                "store": self.tenant.slug,
                "items": snapshot["items"],
                "recent_items": snapshot["recent_items"],
            }
        )
        await self.send_json(
            {"type": "counters", "date": snapshot["date"], "events_today": snapshot["events_today"]}
        )

    async def disconnect(self, code: int) -> None:
        for attribute in ("group_name", "member_group_name"):
            if hasattr(self, attribute):
                await self.channel_layer.group_discard(getattr(self, attribute), self.channel_name)

    async def access_revoked(self, message: dict) -> None:
        """`{"type": "access.revoked"}`: the user lost access to the store (or the store was
        suspended); close with the code a refused connect gets."""
        await self.close(code=CLOSE_FORBIDDEN)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        """The socket is push-only: whatever a client sends (text, bytes, JSON or not) is
        ignored, never decoded, so no frame can raise in the server."""

    async def store_event(self, message: dict) -> None:
        """Relays a group message `{"type": "store.event", "payload": {...}}` to the browser.
        A notification carries `recipients` ({user id: notification id}); it reaches only
        those users, each with their own id, and the recipient list is never sent."""
        payload = message["payload"]
        if payload.get("type") == "notification":
            recipients = payload.get("recipients") or {}
            if self.user_id not in recipients:
                return
            payload = {key: value for key, value in payload.items() if key != "recipients"}
            payload["id"] = recipients[self.user_id]
        await self.send_json(payload)
