"""All ORM models, imported here so that metadata (and Alembic) sees every table."""

from devpocket.db.models.action_token import ActionToken
from devpocket.db.models.auth_session import AuthSession
from devpocket.db.models.billing_event import BillingEvent
from devpocket.db.models.command_history import CommandHistory
from devpocket.db.models.device import Device
from devpocket.db.models.payment import Payment
from devpocket.db.models.refresh_token import RefreshToken
from devpocket.db.models.ssh_key import SshKey
from devpocket.db.models.ssh_profile import SshProfile
from devpocket.db.models.sync_applied_change import SyncAppliedChange
from devpocket.db.models.sync_change import SyncChange
from devpocket.db.models.sync_entity import SyncEntity
from devpocket.db.models.terminal_session import TerminalSession
from devpocket.db.models.usage_counter import UsageCounter
from devpocket.db.models.user import User

__all__ = [
    "ActionToken",
    "AuthSession",
    "BillingEvent",
    "CommandHistory",
    "Device",
    "Payment",
    "RefreshToken",
    "SshKey",
    "SshProfile",
    "SyncAppliedChange",
    "SyncChange",
    "SyncEntity",
    "TerminalSession",
    "UsageCounter",
    "User",
]
