"""Brand names with ten thousand brands (issue 18): `pipectl_brand_ids` asks each index for the
next brand (migration 0015), and `status --brand B` lists every brand only for a brand the
report does not show."""

from __future__ import annotations

import pytest
from test_contract import T0, new_job

from pipectl.client import Client
from pipectl.errors import InvalidInput
from pipectl.settings import load_settings
from pipectl.store import Store


def test_brand_ids_skip_from_jobs_to_dataset_rows_and_back(store: Store) -> None:
    for brand in ("b", "b", "d", "f"):  # two jobs of one brand: one name
        store.insert_job(new_job(brand_id=brand), T0)
    store.insert_job(new_job(brand_id=None), T0)
    # Dataset rows without a job of their brand, before, between and after the jobs' brands.
    store.set_datasets_retired([("a", "orders"), ("c", "orders"), ("c", "ads"), ("g", "x")], T0, T0)
    store.set_datasets_retired([(None, "orders")], T0, T0)
    assert store.brand_ids() == ["a", "b", "c", "d", "f", "g"]


def test_status_of_a_brand_it_shows_lists_no_brands(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client.from_url(sqlite_url, load_settings(database_url=sqlite_url))
    try:
        client.store.insert_job(new_job(brand_id="acme"), T0)
        client.store.insert_job(new_job(brand_id="globex", status="archived"), T0)
        listed = []
        every_brand = client.store.brand_ids

        def counting() -> list[str]:
            listed.append(1)
            return every_brand()

        monkeypatch.setattr(client.store, "brand_ids", counting)
        assert client.gate_status(["acme"]).selected_brands == ("acme",)
        assert listed == []
        # An archived job's brand is known, but only the list of every brand says so.
        assert client.gate_status(["globex"]).jobs == []
        assert len(listed) == 1
        with pytest.raises(InvalidInput, match="acmee"):
            client.gate_status(["acmee"])
        assert len(listed) == 2
    finally:
        client.close()
