from transforms.pseudonym import patient_key


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
