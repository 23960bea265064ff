"""ITI-8 Patient Identity Feed messages mutated, through the real handler
(``FeedProcessor.handle``): always an HL7 v2 ACK (MSH, MSA), never an exception."""

from __future__ import annotations

from e2e_support import adt_a01, new_patient_number
from hypothesis import given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=120, derandomize=True, deadline=None)
ADT = adt_a01("FUZZ0001")


def _is_ack(reply: bytes) -> bool:
    segments = [s for s in reply.split(b"\r") if s]
    return (
        len(segments) >= 2
        and segments[0].startswith(b"MSH")
        and any(s.startswith(b"MSA|A") for s in segments)
    )


mutations = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, len(ADT))),
    st.tuples(st.just("insert"), st.integers(0, len(ADT)), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("replace"), st.integers(0, len(ADT) - 1), st.binary(min_size=1, max_size=1)),
    st.tuples(st.just("drop-segment"), st.integers(0, 3)),
    st.tuples(st.just("field"), st.integers(0, 3), st.integers(0, 20), st.text(max_size=30)),
    st.tuples(st.just("random"), st.binary(max_size=200)),
)


def _mutate(message: bytes, mutation: tuple) -> bytes:
    kind, *args = mutation
    if kind == "truncate":
        return message[: args[0]]
    if kind == "insert":
        return message[: args[0]] + args[1] + message[args[0] :]
    if kind == "replace":
        return message[: args[0]] + args[1] + message[args[0] + 1 :]
    segments = message.split(b"\r")
    if kind == "drop-segment":
        del segments[args[0] % len(segments)]
        return b"\r".join(segments)
    if kind == "field":
        segment = segments[args[0] % len(segments)].split(b"|")
        segment[args[1] % len(segment)] = args[2].encode("utf-8")
        segments[args[0] % len(segments)] = b"|".join(segment)
        return b"\r".join(segments)
    return args[0]


@FUZZ
@given(mutation=mutations)
def test_mutated_adt_is_always_acknowledged(harness, mutation: tuple) -> None:
    assert harness.application.feed is not None
    message = adt_a01(new_patient_number())
    reply = harness.application.feed.handle(_mutate(message, mutation))
    assert _is_ack(reply), reply
