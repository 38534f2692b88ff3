import polars as pl

from transforms.staging.pseudonym import Pseudonymiser, patient_key


def test_patient_key_is_stable_and_depends_on_key_centre_and_id():
    k = patient_key("secret", "C01", "0001")
    assert k == patient_key("secret", "C01", "0001")
    assert (
        len(
            {
                k,
                patient_key("other", "C01", "0001"),
                patient_key("secret", "C02", "0001"),
                patient_key("secret", "C01", "0002"),
            }
        )
        == 4
    )
    assert "0001" not in k and k.startswith("p") and len(k) == 21


def test_pseudonymiser_gives_each_row_its_patient_key_and_drops_the_local_id():
    """Same local id in two centres: two patients; a missing id stays missing; rows keep
    their order; a second frame reuses the keys already computed."""
    pseudonymise = Pseudonymiser("secret")
    frame = pl.DataFrame(
        {
            "centre_id": ["C02", "C01", "C02", "C01"],
            "patient_id": ["0001", "0001", None, "0001"],
            "month": [3, 1, 2, 0],
        }
    )
    keyed = pseudonymise(frame)
    assert "patient_id" not in keyed.columns
    assert keyed["month"].to_list() == [3, 1, 2, 0]
    assert keyed["patient_key"].to_list() == [
        patient_key("secret", "C02", "0001"),
        patient_key("secret", "C01", "0001"),
        None,
        patient_key("secret", "C01", "0001"),
    ]
    again = pseudonymise(frame.with_columns(patient_id=pl.lit("0002")))
    assert again["patient_key"].to_list() == [
        patient_key("secret", c, "0002") for c in ("C02", "C01", "C02", "C01")
    ]


def test_patient_key_never_changes_between_versions():
    """Pseudonyms persist across nights: HMAC-SHA256 of 'centre\\x1fid', 20 hex digits."""
    assert patient_key("secret", "C01", "0001") == "p180df174f7fd19e99236"
    assert Pseudonymiser("secret")(pl.DataFrame({"centre_id": ["C01"], "patient_id": ["0001"]}))[
        "patient_key"
    ].to_list() == ["p180df174f7fd19e99236"]
