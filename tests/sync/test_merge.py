"""The conflict rules, each one, in both orders, with their tie-breaks (pure, no database)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from devpocket.sync.merge import ClientChange, Decision, FieldConflict, ServerState, Stamp, decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def live(version: int = 5, **stamps: Stamp) -> ServerState:
    data = {"name": "web", "port": 22, "color": "red"}
    return ServerState(exists=True, version=version, data=data, stamps=stamps)


def upsert(
    base: int, when: float = 100, device: str = "dev-b", change: str = "c-1", **data: Any
) -> ClientChange:
    return ClientChange("upsert", base, Stamp(0, t(when), device, change), data)


def delete(base: int, when: float = 100) -> ClientChange:
    return ClientChange("delete", base, Stamp(0, t(when), "dev-b", "c-1"))


BASE = {"name": "web", "port": 22, "color": "red"}


def test_an_upsert_of_an_unknown_entity_creates_it() -> None:
    decision = decide(ServerState(exists=False), upsert(0, name="db", port=2222), None)
    assert decision == Decision("create", "applied", writes={"name": "db", "port": 2222})


def test_an_update_based_on_a_version_before_the_delete_is_rejected() -> None:
    tombstone = ServerState(exists=False, deleted=True, version=9)
    decision = decide(tombstone, upsert(8, name="db"), None)
    assert (decision.action, decision.status, decision.reason) == (
        "none",
        "rejected",
        "entity_deleted",
    )


@pytest.mark.parametrize("base", [9, 12])
def test_an_upsert_based_on_the_delete_or_later_creates_it_again(base: int) -> None:
    tombstone = ServerState(exists=False, deleted=True, version=9)
    assert decide(tombstone, upsert(base, name="db"), None).action == "create"


@pytest.mark.parametrize("base", [5, 7])
def test_a_change_based_on_the_current_version_applies_what_differs(base: int) -> None:
    decision = decide(live(), upsert(base, name="db", port=22), BASE)
    assert decision == Decision("update", "applied", writes={"name": "db"})


def test_a_field_the_server_kept_since_the_base_takes_the_clients_value() -> None:
    server = live(version=5, color=Stamp(5, t(50), "dev-a"))
    decision = decide(server, upsert(3, when=10, name="db"), BASE)
    assert decision == Decision("update", "merged", writes={"name": "db"})


def test_fields_changed_on_both_sides_go_to_the_later_writer() -> None:
    server = ServerState(
        exists=True,
        version=5,
        data={"name": "server", "port": 2201},
        stamps={"name": Stamp(4, t(50), "dev-a"), "port": Stamp(5, t(150), "dev-a")},
    )
    decision = decide(server, upsert(3, when=100, name="client", port=2222), BASE)
    assert decision.status == "conflict_resolved"
    assert decision.writes == {"name": "client"}
    assert decision.conflicts == [
        FieldConflict("name", "server", "client", "client"),
        FieldConflict("port", 2201, 2222, "server"),
    ]


@pytest.mark.parametrize(
    ("server_device", "client_device", "winner"),
    [("dev-a", "dev-b", "client"), ("dev-b", "dev-a", "server")],
)
def test_same_time_goes_to_the_greater_device_id(
    server_device: str, client_device: str, winner: Literal["server", "client"]
) -> None:
    server = live(name=Stamp(6, t(100), server_device))
    server = replace(server, version=6, data={**server.data, "name": "server"})
    decision = decide(server, upsert(5, when=100, device=client_device, name="client"), BASE)
    assert decision.conflicts[0].winner == winner
    assert ("name" in decision.writes) == (winner == "client")


def test_the_stamp_order_is_time_then_device_then_change_id() -> None:
    stamps = [
        Stamp(1, t(2), "a", "z"),
        Stamp(1, t(1), "b", "z"),
        Stamp(1, t(1), "a", "y"),
        Stamp(1, t(1), "a", "x"),
        Stamp(1, t(1), None, "z"),
    ]
    assert sorted(stamps, key=Stamp.key) == [stamps[4], stamps[3], stamps[2], stamps[1], stamps[0]]


@pytest.mark.parametrize("when", [50, 150])
def test_what_the_same_device_wrote_since_its_base_is_no_conflict(when: float) -> None:
    """A batch of one device's changes all carry the base it had offline: its own earlier
    writes are not news to it, whatever its clock says."""
    server = live(name=Stamp(6, t(100), "dev-b", "c-0"), port=Stamp(7, t(100), "dev-b", "c-0"))
    server = replace(server, version=7, data={**server.data, "name": "first"})
    assert decide(server, upsert(5, when=when, name="second"), BASE) == Decision(
        "update", "applied", writes={"name": "second"}
    )
    assert decide(server, delete(5, when=when), None) == Decision("delete", "applied")


def test_fields_sent_unchanged_from_the_base_are_not_claimed() -> None:
    server = replace(live(version=6, name=Stamp(6, t(200), "dev-a")), data={**BASE, "name": "new"})
    # A full copy sent back: only `port` differs from what the device based it on.
    decision = decide(server, upsert(5, when=300, name="web", port=2222, color="red"), BASE)
    assert decision == Decision("update", "merged", writes={"port": 2222})


def test_without_a_known_base_every_field_sent_is_claimed() -> None:
    server = replace(live(version=6, name=Stamp(6, t(200), "dev-a")), data={**BASE, "name": "new"})
    decision = decide(server, upsert(5, when=300, name="web"), None)
    assert decision.writes == {"name": "web"}
    assert decision.conflicts == [FieldConflict("name", "new", "web", "client")]


@pytest.mark.parametrize(("when", "restamped"), [(300, ["name"]), (100, [])])
def test_the_same_value_written_on_both_sides_is_no_conflict(
    when: float, restamped: list[str]
) -> None:
    server = replace(live(version=6, name=Stamp(6, t(200), "dev-a")), data={**BASE, "name": "db"})
    decision = decide(server, upsert(5, when=when, name="db"), BASE)
    assert decision == Decision("update", "merged", restamp=restamped)


@pytest.mark.parametrize(
    "server", [ServerState(exists=False), ServerState(exists=False, deleted=True, version=4)]
)
def test_deleting_what_is_not_there_is_already_done(server: ServerState) -> None:
    assert decide(server, delete(3), None) == Decision("none", "merged")


def test_a_delete_based_on_the_current_version_applies() -> None:
    assert decide(live(version=5), delete(5), None) == Decision("delete", "applied")


def test_a_delete_wins_over_newer_updates_and_reports_them() -> None:
    server = live(version=7, port=Stamp(7, t(500), "dev-a"), name=Stamp(2, t(1), "dev-a"))
    decision = decide(server, delete(5, when=100), None)
    assert decision.action == "delete"
    assert decision.status == "conflict_resolved"
    assert decision.conflicts == [FieldConflict("port", 22, None, "client")]


# --- Order independence: the rules applied one push after another, in every order -------------


@dataclass(frozen=True)
class Write:
    device: str
    op: Literal["upsert", "delete"]
    when: float
    data: dict[str, Any]


def _apply(server: ServerState, write: Write, cursor: int, base: dict[str, Any]) -> ServerState:
    stamp = Stamp(cursor, t(write.when), write.device, f"change-{write.device}")
    change = ClientChange(write.op, 1, stamp, write.data)
    decision = decide(server, change, base if server.exists else None)
    if decision.action == "delete":
        return ServerState(exists=False, deleted=True, version=cursor)
    if decision.action == "none":
        return server
    stamps = dict(server.stamps) | dict.fromkeys(decision.writes, stamp)
    for name in decision.restamp:
        stamps[name] = replace(stamp, cursor=server.stamps[name].cursor)
    data = {**server.data, **decision.writes}
    return ServerState(exists=True, version=cursor, data=data, stamps=stamps)


def _converge(writes: list[Write]) -> set[tuple[bool, tuple[tuple[str, Any], ...]]]:
    finals = set()
    for order in itertools.permutations(writes):
        server = ServerState(
            exists=True, version=1, data=dict(BASE), stamps={f: Stamp(1, t(0)) for f in BASE}
        )
        for cursor, write in enumerate(order, start=2):
            server = _apply(server, write, cursor, BASE)
        finals.add((server.exists, tuple(sorted(server.data.items()))))
    return finals


@pytest.mark.parametrize(
    "writes",
    [
        [Write("a", "upsert", 10, {"name": "a"}), Write("b", "upsert", 20, {"name": "b"})],
        [Write("a", "upsert", 10, {"name": "a"}), Write("b", "upsert", 10, {"name": "b"})],
        [
            Write("a", "upsert", 10, {"name": "x"}),
            Write("b", "upsert", 30, {"name": "x"}),
            Write("c", "upsert", 20, {"name": "y"}),
        ],
        [
            Write("a", "upsert", 10, {"name": "a", "port": 1}),
            Write("b", "upsert", 5, {"port": 2}),
            Write("c", "upsert", 7, {"color": "c", "name": "c"}),
        ],
        [Write("a", "delete", 1, {}), Write("b", "upsert", 50, {"name": "b"})],
        [
            Write("a", "upsert", 10, {"name": "a"}),
            Write("b", "delete", 5, {}),
            Write("c", "upsert", 20, {"port": 3}),
        ],
    ],
)
def test_every_push_order_ends_in_the_same_state(writes: list[Write]) -> None:
    assert len(_converge(writes)) == 1
