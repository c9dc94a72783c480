"""Checks MA as an OpenID provider with Authlib, an independent OAuth and
OpenID Connect library: the discovery document validates as OpenID
Provider Metadata (with RP-initiated logout), the ID token as a code-flow
ID token (signature from the JWKS the document names, iss, aud, azp,
nonce, times), the access token as an RFC 9068 JWT access token. Prints
what it checked as JSON; exits 1 when something is refused.

usage: verify_authlib.py BASE_URL CLIENT_ID NONCE AUDIENCE ID_TOKEN ACCESS_TOKEN
"""

import base64
import json
import sys
import urllib.request

from authlib.oauth2.rfc9068.claims import JWTAccessTokenClaims
from authlib.oidc import discovery, rpinitiated
from authlib.oidc.core.claims import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ALGORITHMS = ["RS256", "ES256", "EdDSA"]


def fetch(url):
    with urllib.request.urlopen(url) as resp:
        return json.load(resp)


def main() -> int:
    base, client_id, nonce, audience, id_token, access_token = sys.argv[1:7]
    doc = fetch(f"{base}/.well-known/openid-configuration")
    metadata = discovery.OpenIDProviderMetadata(doc)
    metadata.validate(metadata_classes=[rpinitiated.OpenIDProviderMetadata])
    issuer = doc["issuer"]
    keys = KeySet.import_key_set(fetch(doc["jwks_uri"]))

    token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
    id_claims = CodeIDToken(
        token.claims,
        token.header,
        options={"iss": {"essential": True, "value": issuer}},
        params={"nonce": nonce, "client_id": client_id},
    )
    id_claims.validate()

    token = jwt.decode(access_token, keys, algorithms=ALGORITHMS)
    at_claims = JWTAccessTokenClaims(
        token.claims,
        token.header,
        options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": audience},
            "sub": {"essential": True},
            "client_id": {"essential": True, "value": client_id},
            "jti": {"essential": True},
            "iat": {"essential": True},
        },
    )
    at_claims.validate()
    print(json.dumps({
        "id_token": {"alg": token_alg(id_token), **dict(id_claims)},
        "access_token": {"typ": token.header.get("typ"), **dict(at_claims)},
    }))
    return 0


def token_alg(t):
    return json.loads(base64.urlsafe_b64decode(t.split(".")[0] + "=="))["alg"]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (JoseError, ValueError) as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
