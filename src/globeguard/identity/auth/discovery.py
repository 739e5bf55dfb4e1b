"""One builder for both discovery documents: RFC 8414 authorization server metadata at
`/.well-known/oauth-authorization-server`, and the OpenID Connect document at
`/.well-known/openid-configuration`, which is the same plus the OIDC-only fields."""

from __future__ import annotations

from typing import Any

from globeguard.identity.dependencies import TOKEN_URL
from globeguard.identity.permissions import Permission

INTROSPECTION_URL = "/api/v1/auth/introspect"
JWKS_URL = "/.well-known/jwks.json"
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def server_metadata(issuer: str, *, openid: bool) -> dict[str, Any]:
    base = issuer.rstrip("/")
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "jwks_uri": f"{base}{JWKS_URL}",
        "token_endpoint": f"{base}{TOKEN_URL}",
        "introspection_endpoint": f"{base}{INTROSPECTION_URL}",
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        # A bearer token or API key holding `users:read` may introspect as well.
        "introspection_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "bearer"],
        "scopes_supported": sorted(["profile", *Permission]),
        # No authorization endpoint: tokens come only from the token endpoint's grants.
        "response_types_supported": ["token"],
    }
    if openid:
        metadata |= {
            "id_token_signing_alg_values_supported": ["ES256"],
            "claims_supported": [
                "sub",
                "client_id",
                "sid",
                "scope",
                "roles",
                "ver",
                "preferred_username",
            ],
            "subject_types_supported": ["public"],
        }
    return metadata
