//! The OpenAPI 3.1 document served at `/api/v1/openapi.json`.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn body(schema: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

/// `/auth/verify`: every method answers alike (only `get` is listed).
fn forward_auth(secured: &Value, bad: &Value, unauthorized: &Value, unavailable: &Value) -> Value {
    let query = |name: &str, what: &str| json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" }, "description": what });
    json!({ "get": {
        "summary": "Forward auth for gateways (nginx auth_request, Traefik forwardAuth, Envoy ext_authz): any method, also under /auth/verify/{rest}",
        "security": secured,
        "parameters": [
            query("scope", "space-separated scopes the token must all carry (also the X-Auth-Require-Scope header)"),
            query("audience", "the aud the token must carry (also the X-Auth-Require-Audience header)")
        ],
        "responses": {
            "200": { "description": "valid and unrevoked; identity in X-Auth-Subject, X-Auth-Session, X-Auth-Scope, X-Auth-Audience, X-Auth-Expires, X-Auth-Email, X-Auth-Client-Id" },
            "400": bad, "401": unauthorized,
            "403": error_response("insufficient_scope, audience_not_accepted"),
            "503": unavailable
        }
    }})
}

/// Builds the document.
#[must_use]
pub fn document() -> Value {
    let secured = json!([{ "bearer": [] }]);
    let unauthorized = error_response(
        "missing_token, token_* (malformed, bad_signature, unknown_kid, expired, not_yet_valid, wrong_issuer, wrong_audience, alg_not_allowed), token_revoked",
    );
    let unavailable = error_response(
        "database_unavailable, auth_service_unavailable, revocation_unavailable, keys_unavailable, busy (with Retry-After)",
    );
    let bad = error_response(
        "bad_request (broken JSON, missing fields, more than one Authorization header), invalid_* codes",
    );
    let too_large = error_response("payload_too_large");
    let not_found = error_response("not_found (also for another user's note)");
    let forward_auth = forward_auth(&secured, &bad, &unauthorized, &unavailable);
    json!({
        "openapi": "3.1.0",
        "info": { "title": "AuthRealm main project (OP)", "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            "/api/v1/register": { "post": {
                "summary": "Create an account",
                "requestBody": body("RegisterRequest"),
                "responses": { "201": ok("created", "User"), "400": bad, "409": error_response("email_taken"), "413": too_large, "503": unavailable }
            }},
            "/api/v1/login": { "post": {
                "summary": "Check email and password; get an access + refresh token pair",
                "requestBody": body("LoginRequest"),
                "responses": { "200": ok("token pair", "TokenPair"), "400": bad, "401": error_response("invalid_credentials"), "403": error_response("account_disabled"), "429": error_response("too_many_attempts (with Retry-After)"), "503": unavailable }
            }},
            "/api/v1/token/refresh": { "post": {
                "summary": "Rotate the refresh token; get a new pair",
                "requestBody": body("RefreshRequest"),
                "responses": { "200": ok("token pair", "TokenPair"), "400": bad, "401": error_response("refresh_token_invalid, refresh_token_reused, account_disabled"), "503": unavailable }
            }},
            "/api/v1/logout": { "post": {
                "summary": "Revoke the presented access token; with a refresh_token in the body, end the whole session",
                "security": secured,
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LogoutRequest" } } } },
                "responses": { "204": { "description": "revoked" }, "401": unauthorized, "503": unavailable }
            }},
            "/api/v1/logout-all": { "post": {
                "summary": "End every session of the user",
                "security": secured,
                "responses": { "204": { "description": "revoked" }, "401": unauthorized, "503": unavailable }
            }},
            "/api/v1/me": { "get": {
                "summary": "The stored user",
                "security": secured,
                "responses": { "200": ok("the user", "User"), "401": unauthorized, "503": unavailable }
            }},
            "/api/v1/session": { "get": {
                "summary": "The verified token's claims (no database)",
                "security": secured,
                "responses": { "200": ok("claims", "Session"), "401": unauthorized, "503": unavailable }
            }},
            "/api/v1/notes": {
                "get": {
                    "summary": "The user's notes, newest first",
                    "security": secured,
                    "parameters": [
                        { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 200, "default": 50 } },
                        { "name": "offset", "in": "query", "schema": { "type": "integer", "minimum": 0, "default": 0 } }
                    ],
                    "responses": { "200": ok("notes", "NoteList"), "400": bad, "401": unauthorized, "503": unavailable }
                },
                "post": {
                    "summary": "Create a note",
                    "security": secured,
                    "requestBody": body("NoteInput"),
                    "responses": { "201": ok("created", "Note"), "400": bad, "401": unauthorized, "413": too_large, "503": unavailable }
                }
            },
            "/api/v1/notes/{id}": {
                "parameters": [ { "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } } ],
                "get": { "summary": "One note", "security": secured, "responses": { "200": ok("the note", "Note"), "401": unauthorized, "404": not_found } },
                "put": { "summary": "Replace a note's title and body", "security": secured, "requestBody": body("NoteInput"), "responses": { "200": ok("the note", "Note"), "400": bad, "401": unauthorized, "404": not_found, "413": too_large } },
                "delete": { "summary": "Delete a note", "security": secured, "responses": { "204": { "description": "deleted" }, "401": unauthorized, "404": not_found } }
            },
            "/auth/verify": forward_auth,
            "/healthz": { "get": { "summary": "Process is up", "responses": { "200": { "description": "ok" } } } },
            "/readyz": { "get": { "summary": "Database reachable, schema migrated, JWKS loaded, revocation state known", "responses": { "200": { "description": "ready" }, "503": { "description": "not ready; the body names the failing checks" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text exposition" } } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "RegisterRequest": { "type": "object", "required": ["email", "password"], "properties": { "email": { "type": "string", "format": "email", "maxLength": 254 }, "password": { "type": "string", "minLength": 12, "description": "at most 1024 bytes" }, "display_name": { "type": ["string", "null"], "maxLength": 100 } } },
                "LoginRequest": { "type": "object", "required": ["email", "password"], "properties": { "email": { "type": "string" }, "password": { "type": "string" } } },
                "RefreshRequest": { "type": "object", "required": ["refresh_token"], "properties": { "refresh_token": { "type": "string" } } },
                "LogoutRequest": { "type": "object", "properties": { "refresh_token": { "type": "string" } } },
                "TokenPair": { "type": "object", "properties": { "access_token": { "type": "string" }, "token_type": { "type": "string", "const": "Bearer" }, "expires_in": { "type": "integer" }, "refresh_token": { "type": "string" }, "refresh_expires_in": { "type": "integer" }, "session_id": { "type": "string" }, "sub": { "type": "string" } } },
                "User": { "type": "object", "properties": { "id": { "type": "string" }, "email": { "type": "string" }, "display_name": { "type": ["string", "null"] }, "created_at": { "type": "integer", "description": "Unix seconds" } } },
                "Session": { "type": "object", "properties": { "sub": { "type": "string" }, "sid": { "type": "string" }, "jti": { "type": "string" }, "iat": { "type": "integer" }, "exp": { "type": "integer" }, "email": { "type": ["string", "null"] } } },
                "NoteInput": { "type": "object", "required": ["title"], "properties": { "title": { "type": "string", "minLength": 1, "maxLength": 200 }, "body": { "type": "string", "maxLength": 20000 } } },
                "Note": { "type": "object", "properties": { "id": { "type": "string" }, "title": { "type": "string" }, "body": { "type": "string" }, "created_at": { "type": "integer" }, "updated_at": { "type": "integer" } } },
                "NoteList": { "type": "object", "properties": { "notes": { "type": "array", "items": { "$ref": "#/components/schemas/Note" } } } }
            }
        }
    })
}
