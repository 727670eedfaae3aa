"""The fork server's control messages: a case ends at its init's EMPTY (its namespace is empty)
when nothing of the host waits for the init to be gone; that case's STARTED (which can come
after the EMPTY) and FINISHED then come before the next case's messages, and are taken as the
earlier case's, never as the next one's."""

from __future__ import annotations

import os
import socket
import struct

from runner.engine.native import server
from runner.engine.native.server import CaseRun, ForkServer


def _server() -> tuple[ForkServer, socket.socket]:
    srv = object.__new__(ForkServer)  # its control socket only: no executor behind it
    srv.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.unfinished = 0
    return srv, theirs


def _send(sock: socket.socket, *messages: tuple[int, int, int]) -> None:
    for m in messages:
        sock.send(struct.pack("<qqq", *m))


def _until_ended(srv: ForkServer, out: CaseRun, at_empty: bool) -> int:
    """How many messages it took until the case ended."""
    taken = 1
    while not srv._control(out, at_empty):
        taken += 1
    return taken


def test_a_case_ends_at_empty_and_the_next_takes_only_its_own_messages():
    srv, theirs = _server()
    first = CaseRun()
    # the init's ENDING and EMPTY, before the server got round to its STARTED
    _send(theirs, (server.CTL_ENDING, 2, 0), (server.CTL_EMPTY, 0, 0))
    assert _until_ended(srv, first, at_empty=True) == 2
    assert first.endings == [(2, 0)] and srv.unfinished == 1
    second = CaseRun()
    _send(
        theirs,
        (server.CTL_STARTED, 4001, 0),  # the first case's, late
        (server.CTL_FINISHED, 4001, 0),
        (server.CTL_STARTED, 4002, 0),
        (server.CTL_ENDING, 2, 9),
        (server.CTL_EMPTY, 0, 0),
    )
    assert _until_ended(srv, second, at_empty=True) == 5
    assert second.init == 4002 and second.endings == [(2, 9)] and srv.unfinished == 1


def test_a_case_that_waits_for_its_init_ends_at_finished_with_its_status():
    srv, theirs = _server()
    out = CaseRun()
    _send(
        theirs,
        (server.CTL_STARTED, 4001, 0),
        (server.CTL_EMPTY, 0, 0),
        (server.CTL_FINISHED, 4001, 11),
    )
    assert _until_ended(srv, out, at_empty=False) == 3
    assert out.init == 4001 and out.init_status == 11 and srv.unfinished == 0


def test_a_killed_case_waits_for_its_init_to_be_reaped():
    srv, theirs = _server()
    out = CaseRun(killed=True)
    _send(theirs, (server.CTL_EMPTY, 0, 0), (server.CTL_FINISHED, 4001, 9))
    assert _until_ended(srv, out, at_empty=True) == 2 and srv.unfinished == 0


def test_a_slot_claiming_more_mappings_than_it_holds_is_read_within_it():
    """A case can write its own slot (machine code through `call`): a map count past the slot's
    room is read as the room, never past it."""
    arena = server.NativeArena()
    try:
        at = server._native_off()
        os.pwrite(arena.fd, struct.pack("<i", 1), at)  # one slot claimed
        head = server._NSLOT_HEAD.pack(77, 1, 0, 0, 0, 0, 0, 1 << 30, 0)  # in a step
        os.pwrite(arena.fd, head, at + 64)
        (slot,) = arena.native_slots()
        assert slot.pid == 77 and slot.in_step and len(slot.maps) == server.NATIVE_MAPS
    finally:
        arena.close()
