//! The protected resource: each user's notes. A user sees and changes only
//! their own; another user's note answers 404 exactly like a missing one.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{ApiJson, Authenticated};
use crate::db::{Note, looks_like_id, new_id};
use crate::error::{ApiError, codes};
use crate::users::require_db;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest body, in characters.
pub const MAX_BODY_CHARS: usize = 20_000;
/// Most notes one list call returns.
pub const MAX_LIMIT: i64 = 200;

/// Body of `POST /api/v1/notes` and `PUT /api/v1/notes/{id}`.
#[derive(Debug, Deserialize)]
pub struct NoteInput {
    /// 1 to 200 characters, no control characters.
    pub title: String,
    /// Up to 20 000 characters; newlines and tabs allowed.
    #[serde(default)]
    pub body: String,
}

/// Query of `GET /api/v1/notes`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// Notes to skip (default 0).
    pub offset: Option<i64>,
}

/// Answer of `GET /api/v1/notes`.
#[derive(Debug, Serialize)]
pub struct NoteList {
    /// The notes, newest first.
    pub notes: Vec<Note>,
}

fn check(input: &NoteInput) -> Result<(), ApiError> {
    let bad = |m: &'static str| ApiError::bad_request(codes::INVALID_NOTE, m);
    let title = input.title.trim();
    if title.is_empty() {
        return Err(bad("the title must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(bad("the title must have at most 200 characters"));
    }
    if title.chars().any(char::is_control) {
        return Err(bad("the title must not contain control characters"));
    }
    if input.body.chars().count() > MAX_BODY_CHARS {
        return Err(bad("the body must have at most 20000 characters"));
    }
    if input
        .body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(bad(
            "the body must not contain control characters other than newlines and tabs",
        ));
    }
    Ok(())
}

fn note_id(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    match path {
        Ok(Path(id)) if looks_like_id(&id) => Ok(id),
        _ => Err(ApiError::not_found()),
    }
}

/// `GET /api/v1/notes`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<NoteList>, ApiError> {
    let Query(q) = query.map_err(|_| {
        ApiError::bad_request(codes::BAD_REQUEST, "`limit` and `offset` must be integers")
    })?;
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset.unwrap_or(0);
    if !(1..=MAX_LIMIT).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(
            codes::BAD_REQUEST,
            "`limit` must be 1 to 200 and `offset` not negative",
        ));
    }
    require_db(&state)?;
    let notes = state.db.list_notes(&claims.sub, limit, offset).await?;
    Ok(Json(NoteList { notes }))
}

/// `POST /api/v1/notes`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    ApiJson(input): ApiJson<NoteInput>,
) -> Result<(StatusCode, Json<Note>), ApiError> {
    check(&input)?;
    require_db(&state)?;
    let id = new_id().map_err(|e| ApiError::internal(&e))?;
    let now = authrealm_tokens::unix_now();
    let note = state
        .db
        .insert_note(&claims.sub, &id, input.title.trim(), &input.body, now)
        .await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// `GET /api/v1/notes/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Note>, ApiError> {
    let id = note_id(path)?;
    require_db(&state)?;
    state
        .db
        .get_note(&claims.sub, &id)
        .await?
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// `PUT /api/v1/notes/{id}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    path: Result<Path<String>, PathRejection>,
    ApiJson(input): ApiJson<NoteInput>,
) -> Result<Json<Note>, ApiError> {
    let id = note_id(path)?;
    check(&input)?;
    require_db(&state)?;
    let now = authrealm_tokens::unix_now();
    state
        .db
        .update_note(&claims.sub, &id, input.title.trim(), &input.body, now)
        .await?
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// `DELETE /api/v1/notes/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = note_id(path)?;
    require_db(&state)?;
    if state.db.delete_note(&claims.sub, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
