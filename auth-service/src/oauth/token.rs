//! The token endpoint's grants (RFC 6749 §4.1.3, §4.4, §6): the client is
//! authenticated first, then the grant is checked against what the client
//! may do. Access tokens are RFC 9068 JWTs (`typ: at+jwt`, `client_id`,
//! `scope`); an ID token comes with the code flow when `openid` was
//! granted, signed by the ID-token key (RS256 when the set has it).
//!
//! The code exchange signs everything first and then makes its one atomic
//! store step (mark the code used and record the session); nothing is
//! answered that the store did not record, and a bad exchange (another
//! client, another redirect URI, a wrong PKCE verifier) changes nothing.

use authrealm_tokens::clients::{ClientEntry, ClientType, GrantType};
use authrealm_tokens::oauth::{ErrorCode, TokenResponse, is_code_verifier, s256_challenge};
use authrealm_tokens::oidc::{IdTokenClaims, released_claims};
use authrealm_tokens::revocation::RevocationKind;
use axum::http::HeaderMap;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use crate::error::{Error, Result};
use crate::keys::JwtType;
use crate::oauth::client_auth::{Refusal, authenticate};
use crate::oauth::form::Form;
use crate::oauth::{ClientTokens, granted_scopes, scope_string};
use crate::opaque::{hash_token, is_code_shaped, new_refresh, random};
use crate::refresh::Refresher;
use crate::service::{AccessIds, AuthService};
use crate::store::{NewSession, RedeemOutcome, Redemption, StoredCode};

impl AuthService {
    /// `POST /oauth2/token`: authenticates the client and runs the grant.
    ///
    /// # Errors
    /// A [`Refusal`] carrying the RFC 6749 §5.2 error (or a store failure).
    pub async fn token(&self, headers: &HeaderMap, form: &Form) -> Result<TokenResponse, Refusal> {
        let grant = form.get("grant_type").and_then(GrantType::parse);
        let outcome = self.token_inner(headers, form, grant).await;
        self.metrics.token_request(
            grant,
            outcome
                .as_ref()
                .map(|_| ())
                .map_err(|r| r.error.oauth_code()),
        );
        outcome
    }

    async fn token_inner(
        &self,
        headers: &HeaderMap,
        form: &Form,
        grant: Option<GrantType>,
    ) -> Result<TokenResponse, Refusal> {
        let registry = self.clients.snapshot();
        let now = self.clock.now();
        let client = authenticate(&registry, headers, form, now)?;
        let basic = headers.contains_key(axum::http::header::AUTHORIZATION);
        let refuse = |error| Refusal::new(error, basic);
        let Some(grant) = grant else {
            return Err(refuse(match form.get("grant_type") {
                None => Error::oauth(ErrorCode::InvalidRequest, "`grant_type` is required"),
                Some(_) => Error::oauth(
                    ErrorCode::UnsupportedGrantType,
                    "`grant_type` must be authorization_code, refresh_token or client_credentials",
                ),
            }));
        };
        if !client.allows(grant) {
            return Err(refuse(Error::oauth(
                ErrorCode::UnauthorizedClient,
                format!(
                    "client `{}` may not use the {} grant",
                    client.client_id,
                    grant.as_str()
                ),
            )));
        }
        let tokens = ClientTokens::of(client, &self.settings);
        match grant {
            GrantType::AuthorizationCode => self.exchange_code(client, &tokens, form, now).await,
            GrantType::RefreshToken => self.refresh_grant(client, &tokens, form).await,
            GrantType::ClientCredentials => self.client_credentials(client, &tokens, form, now),
        }
        .map_err(refuse)
    }

    /// `grant_type=client_credentials`: a token for the client itself.
    fn client_credentials(
        &self,
        client: &ClientEntry,
        tokens: &ClientTokens,
        form: &Form,
        now: i64,
    ) -> Result<TokenResponse> {
        if client.client_type != ClientType::Confidential {
            return Err(Error::oauth(
                ErrorCode::UnauthorizedClient,
                "the client_credentials grant is for confidential clients",
            ));
        }
        let scope = scope_string(&granted_scopes(client, form.get("scope"))?);
        let sid = random(16)?;
        let jti = random(16)?;
        let exp = now + tokens.access_ttl;
        let ids = AccessIds {
            sub: &client.client_id,
            aud: &tokens.audience,
            sid: &sid,
            jti: &jti,
            iat: now,
            exp,
            typ: JwtType::AccessToken,
        };
        let keys = self.keys.snapshot();
        let extra = access_claims(&client.client_id, scope.as_deref());
        let access_token = self.sign_access(keys.active(), &ids, extra)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: secs(tokens.access_ttl),
            scope,
            refresh_token: None,
            id_token: None,
        })
    }

    /// `grant_type=refresh_token`: the rotation, bound to the client.
    async fn refresh_grant(
        &self,
        client: &ClientEntry,
        tokens: &ClientTokens,
        form: &Form,
    ) -> Result<TokenResponse> {
        let token = form.require("refresh_token")?;
        let narrowed = match form.get("scope") {
            Some(s) => scope_string(&granted_scopes(client, Some(s))?),
            None => None,
        };
        let who = Refresher {
            client: &client.client_id,
            audience: &tokens.audience,
            access_ttl: tokens.access_ttl,
            refresh_ttl: tokens.refresh_ttl,
            typ: JwtType::AccessToken,
            scope: narrowed.as_deref(),
        };
        let (pair, scope) = self
            .rotate_refresh(token, &who)
            .await
            .map_err(|e| match e {
                Error::RefreshInvalid => Error::oauth(
                    ErrorCode::InvalidGrant,
                    "refresh token is unknown, expired, revoked, or issued to another client",
                ),
                Error::RefreshReused => Error::oauth(
                    ErrorCode::InvalidGrant,
                    "refresh token was already used; its whole session has been revoked",
                ),
                other => other,
            })?;
        Ok(TokenResponse {
            access_token: pair.access_token,
            token_type: "Bearer".to_owned(),
            expires_in: pair.expires_in,
            scope,
            refresh_token: Some(pair.refresh_token),
            id_token: None,
        })
    }

    /// `grant_type=authorization_code` with PKCE.
    async fn exchange_code(
        &self,
        client: &ClientEntry,
        tokens: &ClientTokens,
        form: &Form,
        now: i64,
    ) -> Result<TokenResponse> {
        let code = form.require("code")?;
        let redirect_uri = form.require("redirect_uri")?;
        let invalid = |msg: &'static str| Error::oauth(ErrorCode::InvalidGrant, msg);
        let verifier = form
            .get("code_verifier")
            .ok_or_else(|| invalid("`code_verifier` is required (PKCE)"))?;
        if !is_code_shaped(code) {
            return Err(invalid("the code is unknown or expired"));
        }
        let code_hash = hash_token(code);
        let Some(StoredCode { record, used }) = self.store.get_code(&code_hash, now).await? else {
            return Err(invalid("the code is unknown or expired"));
        };
        if record.client_id != client.client_id {
            return Err(invalid("the code was issued to another client"));
        }
        if record.redirect_uri != redirect_uri {
            return Err(invalid(
                "`redirect_uri` differs from the one of the authorization request",
            ));
        }
        let challenge = s256_challenge(verifier);
        let pkce_ok = is_code_verifier(verifier)
            && bool::from(challenge.as_bytes().ct_eq(record.code_challenge.as_bytes()));
        if !pkce_ok {
            return Err(invalid(
                "the PKCE `code_verifier` does not match the code's challenge",
            ));
        }
        let scope = scope_string(&record.scope);
        let extra = access_claims(&client.client_id, scope.as_deref());
        let claims_json = serde_json::to_string(&extra)
            .map_err(|e| Error::StoreProtocol(format!("claims encoding: {e}")))?;
        let (refresh_token, refresh_digest) = match client.allows(GrantType::RefreshToken) {
            true => {
                let (token, digest) = new_refresh(&record.sid)?;
                (Some(token), Some(digest))
            }
            false => (None, None),
        };
        let access_exp = now + tokens.access_ttl;
        // Sign before the store step, so nothing can fail after it. A code
        // known to be spent is not worth signing for: the step revokes.
        let signed = match used {
            true => None,
            false => {
                let keys = self.keys.snapshot();
                let jti = random(16)?;
                let ids = AccessIds {
                    sub: &record.sub,
                    aud: &tokens.audience,
                    sid: &record.sid,
                    jti: &jti,
                    iat: now,
                    exp: access_exp,
                    typ: JwtType::AccessToken,
                };
                let access = self.sign_access(keys.active(), &ids, extra)?;
                let id_token = match record.scope.iter().any(|s| s == "openid") {
                    false => None,
                    true => Some(keys.id_token_key().sign(&IdTokenClaims {
                        iss: self.settings.issuer.clone(),
                        sub: record.sub.clone(),
                        aud: client.client_id.clone(),
                        exp: access_exp,
                        iat: now,
                        auth_time: record.auth_time,
                        nonce: record.nonce.clone(),
                        sid: record.sid.clone(),
                        azp: client.client_id.clone(),
                        extra: released_claims(&record.scope, &record.claims),
                    })?),
                };
                Some((access, id_token))
            }
        };
        let refresh_exp = match refresh_token {
            Some(_) => now + tokens.refresh_ttl,
            None => access_exp,
        };
        let outcome = self
            .store
            .redeem_code(&Redemption {
                code_hash: &code_hash,
                code_iat: record.iat,
                session: NewSession {
                    sid: &record.sid,
                    sub: &record.sub,
                    claims_json: &claims_json,
                    client: &client.client_id,
                    refresh_digest,
                    refresh_exp,
                    now,
                },
                revoke_ttl: self.settings.revoke_ttl,
            })
            .await?;
        match (outcome, signed) {
            (RedeemOutcome::Redeemed, Some((access_token, id_token))) => {
                self.metrics.minted.inc();
                Ok(TokenResponse {
                    access_token,
                    token_type: "Bearer".to_owned(),
                    expires_in: secs(tokens.access_ttl),
                    scope,
                    refresh_token,
                    id_token,
                })
            }
            (RedeemOutcome::Reused, _) => {
                self.metrics.code_reuse_detected.inc();
                self.metrics.revoked(RevocationKind::Session, 1);
                tracing::warn!(sid = %record.sid, client_id = %client.client_id,
                    "authorization code presented again: the session it created is revoked");
                Err(invalid(
                    "the code was already used; the tokens issued for it are revoked",
                ))
            }
            // Redeemed without signed tokens cannot happen (a spent code is
            // never redeemed); refuse rather than answer nothing.
            _ => Err(invalid("the code is unknown or expired")),
        }
    }
}

/// The claims an OAuth access token carries besides the registered ones.
fn access_claims(client_id: &str, scope: Option<&str>) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("client_id".to_owned(), Value::from(client_id));
    if let Some(s) = scope {
        extra.insert("scope".to_owned(), Value::from(s));
    }
    extra
}

fn secs(s: i64) -> u64 {
    u64::try_from(s).unwrap_or(0)
}
