"""Swagger UI's Authorize button: both schemes are declared and the password flow works."""

from __future__ import annotations

from tests.helpers import STRONG, signup


async def test_docs_offer_bearer_password_flow_and_api_key(client):
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["Bearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["ApiKey"] == {
        **schemes["ApiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "X-API-KEY",
    }
    me = spec["paths"]["/api/v1/users/me"]["get"]["security"]
    assert {"Bearer": []} in me and {"ApiKey": []} in me


async def test_the_password_flow_as_swagger_sends_it(client):
    await signup(client, "swaggeruser")
    # Swagger UI posts exactly these fields, with empty scope and client fields.
    response = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "swaggeruser",
            "password": STRONG,
            "scope": "",
            "client_id": "",
            "client_secret": "",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json()["username"] == "swaggeruser"
