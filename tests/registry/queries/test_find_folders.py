"""FindFolders (ITI TF-2 3.18.4.1.2.3.7.3)."""

from __future__ import annotations

import pytest
from query_data import P1, P2, Store, ids

from ebxml.model import Code
from ebxml.vocabulary import AvailabilityStatus, StoredQuery

FIND = StoredQuery.FIND_FOLDERS
APPROVED = f"('{AvailabilityStatus.APPROVED}')"


def find(query, **slots):
    return query(FIND, XDSFolderPatientId=f"'{P1}'", XDSFolderStatus=APPROVED, **slots)


@pytest.fixture
def folders(store: Store) -> dict[str, str]:
    both = store.folder(code_list=(Code("c1", "s"), Code("c2", "s")))
    first = store.folder(code_list=(Code("c1", "s"),))
    store.submit(P1, folders=[both, first])
    store.submit(P2, folders=[store.folder(code_list=(Code("c1", "s"),))])
    return {"both": both.entry_uuid, "first": first.entry_uuid}


@pytest.mark.parametrize(
    ("slots", "expected"),
    [
        ({}, ["both", "first"]),
        ({"XDSFolderCodeList": [["('c1^^s')"], ["('c2^^s')"]]}, ["both"]),  # Slots ANDed
        ({"XDSFolderCodeList": "('c2^^s', 'c1^^s')"}, ["both", "first"]),  # values ORed
        (
            {"XDSFolderLastUpdateTimeFrom": "2000", "XDSFolderLastUpdateTimeTo": "3000"},
            ["both", "first"],
        ),
        ({"XDSFolderLastUpdateTimeFrom": "3000"}, []),
    ],
)
def test_find_folders(query, folders, slots, expected) -> None:
    assert ids(find(query, **slots)) == [folders[k] for k in expected]
