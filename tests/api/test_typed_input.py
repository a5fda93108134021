"""What people type reaches the same records: serials in any script, names in any Unicode form."""

import secrets

from tests.api.shop import Shop


async def test_a_check_finds_the_product_whatever_digits_and_dashes_the_caller_types(shop: Shop) -> None:
    serial = f"QX{secrets.randbelow(10**8):08d}"
    customer = await shop.customer()
    product = await shop.product(customer["id"], serial=serial)
    await shop.open_contract(customer, product)
    arabic = serial[:2] + "".join("٠١٢٣٤٥٦٧٨٩"[int(d)] for d in serial[2:])
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in serial)
    for typed in (arabic, full_width, f"{serial[:4]}–{serial[4:]}\u200b", serial.lower()):
        answer = await shop.check(serial=typed)
        assert [p["product_id"] for p in answer["products"]] == [product["id"]], typed


async def test_one_external_ref_in_two_unicode_forms_is_one_customer(shop: Shop) -> None:
    tag = secrets.token_hex(3)
    first = await shop.client.post(
        "/v1/customers",
        json={"name": "José", "country": "PH", "external_ref": f"crm-José-{tag}"},
        headers=shop.keys.auth("checkout"),
    )
    assert first.status_code == 201, first.text
    second = await shop.client.post(
        "/v1/customers",
        json={"name": "Jose\u0301", "country": "PH", "external_ref": f"crm-Jose\u0301-{tag}"},
        headers=shop.keys.auth("checkout"),
    )
    assert second.status_code == 409, second.text


async def test_a_name_that_would_reorder_what_an_agent_sees_is_refused(shop: Shop) -> None:
    response = await shop.client.post(
        "/v1/customers",
        json={"name": "Ana \u202eSELAS", "country": "PH"},
        headers=shop.keys.auth("checkout"),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "name"


async def test_a_blank_name_is_refused(shop: Shop) -> None:
    response = await shop.client.post(
        "/v1/customers", json={"name": " \u200b ", "country": "PH"}, headers=shop.keys.auth("checkout")
    )
    assert response.status_code == 422, response.text
