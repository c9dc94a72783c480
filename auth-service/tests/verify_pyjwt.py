"""Verifies an auth-service access token with PyJWT, an independent JWT
library, the way an ordinary client would: discovery document -> jwks_uri ->
key by kid -> signature, exp/nbf/iss/aud checks. Prints the claims as JSON;
exits non-zero when the token is refused.

usage: verify_pyjwt.py ISSUER AUDIENCE TOKEN
"""

import json
import sys
import urllib.request

import jwt


def main() -> int:
    issuer, audience, token = sys.argv[1:4]
    with urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration") as resp:
        discovery = json.load(resp)
    if discovery["issuer"] != issuer:
        print(f"discovery issuer {discovery['issuer']!r} != {issuer!r}", file=sys.stderr)
        return 2
    client = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA", "ES256", "RS256"],
        audience=audience,
        issuer=issuer,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    print(json.dumps({"claims": claims, "kid": key.key_id}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except jwt.PyJWTError as e:
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
