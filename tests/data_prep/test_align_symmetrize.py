"""data_prep.align: symmetrisation of directional links, and the Pharaoh format."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.align import (
    SYMMETRIZATIONS,
    format_pharaoh,
    parse_pharaoh,
    read_pharaoh,
    symmetrize,
)

# A 4x5 sentence pair where the two directions agree on three links and each adds
# some of its own: (1, 2) next to the agreed (1, 1), (3, 4) far from everything.
FWD = [(0, 0), (1, 1), (1, 2), (2, 3), (3, 4)]
REV = [(0, 0), (1, 1), (2, 3), (2, 2), (0, 4)]


def test_intersection_is_exact() -> None:
    assert symmetrize(FWD, REV, 4, 5, "intersection") == [(0, 0), (1, 1), (2, 3)]


def test_union_is_exact() -> None:
    assert symmetrize(FWD, REV, 4, 5, "union") == [
        (0, 0), (0, 4), (1, 1), (1, 2), (2, 2), (2, 3), (3, 4),
    ]  # fmt: skip


def test_grow_diag_final_and_lies_between_intersection_and_union() -> None:
    inter = set(symmetrize(FWD, REV, 4, 5, "intersection"))
    union = set(symmetrize(FWD, REV, 4, 5, "union"))
    gdfa = set(symmetrize(FWD, REV, 4, 5, "grow-diag-final-and"))
    assert inter <= gdfa <= union
    assert inter < gdfa  # it grows: (1, 2) sits next to (1, 1) with target 2 unaligned


@pytest.mark.parametrize(
    ("fwd", "rev", "expected"),
    [
        # (1, 2) neighbours (1, 1) and target word 2 is unaligned: grow adds it.
        ([(0, 0), (1, 1), (1, 2)], [(0, 0), (1, 1)], [(0, 0), (1, 1), (1, 2)]),
        # (0, 2) is only in one direction and both its words are aligned: left out.
        ([(0, 0), (1, 1), (2, 2), (0, 2)], [(0, 0), (1, 1), (2, 2)], [(0, 0), (1, 1), (2, 2)]),
        # (2, 2) is far from the intersection, both its words unaligned: final-and adds it.
        ([(0, 0), (2, 2)], [(0, 0)], [(0, 0), (2, 2)]),
        ([(0, 0)], [(0, 0), (2, 2)], [(0, 0), (2, 2)]),
        # (2, 0) is far and its target word is aligned: "and" needs both unaligned.
        ([(0, 0), (2, 0)], [(0, 0)], [(0, 0)]),
    ],
    ids=["grow", "both-aligned", "final-and-fwd", "final-and-rev", "final-and-needs-both"],
)
def test_grow_diag_final_and_cases(fwd, rev, expected) -> None:
    assert symmetrize(fwd, rev, 3, 3, "grow-diag-final-and") == expected


@pytest.mark.parametrize("method", SYMMETRIZATIONS)
def test_agreeing_directions_give_the_same_links(method: str) -> None:
    links = [(0, 1), (1, 0), (2, 2)]
    assert symmetrize(links, links, 3, 3, method) == links


@pytest.mark.parametrize("method", SYMMETRIZATIONS)
def test_empty_side_gives_no_links(method: str) -> None:
    assert symmetrize([], [], 0, 4, method) == []
    assert symmetrize([], [], 4, 0, method) == []
    assert symmetrize([], [], 2, 2, method) == []


def test_disjoint_directions() -> None:
    assert symmetrize([(0, 0)], [(1, 1)], 2, 2, "intersection") == []
    assert symmetrize([(0, 0)], [(1, 1)], 2, 2, "union") == [(0, 0), (1, 1)]


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown symmetrization 'diag'"):
        symmetrize([(0, 0)], [(0, 0)], 1, 1, "diag")


def test_format_and_parse_round_trip() -> None:
    links = [(3, 4), (0, 0), (1, 2), (10, 11)]
    text = format_pharaoh(links)
    assert text == "0-0 1-2 3-4 10-11"
    assert parse_pharaoh(text) == sorted(links)
    assert format_pharaoh(parse_pharaoh(text)) == text
    assert format_pharaoh([]) == ""
    assert parse_pharaoh("") == []
    assert parse_pharaoh("  0-1\t2-3 \n") == [(0, 1), (2, 3)]


def test_read_pharaoh_file(tmp_path: Path) -> None:
    path = tmp_path / "links"
    path.write_text("0-0 1-1\n\n2-0\n", encoding="utf-8")
    assert read_pharaoh(path) == [[(0, 0), (1, 1)], [], [(2, 0)]]
