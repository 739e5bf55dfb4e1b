"""Without a configured token the log-stream endpoint does not exist."""


async def test_the_log_stream_is_off_unless_a_token_is_configured(client):
    response = await client.post(
        "/api/v1/ingest/auth0-logs", content=b"[]", headers={"Authorization": "Bearer x"}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "log_stream_disabled"
