// oauth4webapi against a live Globeguard (ISSUER, CLIENT_ID, CLIENT_SECRET from the pytest
// driver): RFC 8414 discovery, client_credentials with client_secret_basic (oauth4webapi
// form-urlencodes the id, so `ggc_` goes out as `ggc%5F`), its token response checks,
// RFC 9068 validation of the access token, and an invalid_client error read as OAuth JSON.
// Prints one JSON line of findings; any failed check throws (exit code 1).
import * as oauth from 'oauth4webapi'

const insecure = { [oauth.allowInsecureRequests]: true } // loopback http in tests only
const issuer = new URL(process.env.ISSUER)
const client = { client_id: process.env.CLIENT_ID }

const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
)

const granted = await oauth.processClientCredentialsResponse(
  as,
  client,
  await oauth.clientCredentialsGrantRequest(
    as,
    client,
    oauth.ClientSecretBasic(process.env.CLIENT_SECRET),
    new URLSearchParams({ scope: 'users:read' }),
    insecure,
  ),
)

const request = new Request(`${issuer.href}api/v1/users`, {
  headers: { authorization: `Bearer ${granted.access_token}` },
})
const claims = await oauth.validateJwtAccessToken(as, request, 'globeguard', {
  signingAlgorithms: ['ES256'],
  ...insecure,
})
if ('roles' in claims && claims.roles.length === 0) throw new Error('empty roles claim')

let invalidClientError = null
try {
  await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic('not-the-secret'),
      new URLSearchParams(),
      insecure,
    ),
  )
} catch (error) {
  if (error instanceof oauth.ResponseBodyError) {
    invalidClientError = error.error
  } else if (error instanceof oauth.WWWAuthenticateChallengeError) {
    // RFC 6749 §5.2: a 401 for Basic client authentication carries a Basic challenge, which
    // oauth4webapi surfaces first; the body is still the OAuth error JSON.
    if (error.cause[0]?.scheme !== 'basic') throw error
    const type = error.response.headers.get('content-type')
    if (type !== 'application/json') throw new Error(`error content-type ${type}`)
    invalidClientError = (await error.response.json()).error
  } else {
    throw error
  }
}

console.log(
  JSON.stringify({
    client_id: claims.client_id,
    scope: granted.scope,
    token_type: granted.token_type,
    invalid_client_error: invalidClientError,
  }),
)
