//! The protected resource: each user's notes. A user sees and changes only
//! their own; another user's note answers 404 exactly like a missing one.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::{ApiJson, Authenticated};
use crate::db::Note;
use crate::db::notes::NoteText;
use crate::error::Error;
use crate::ids::{looks_like_id, new_id};
use crate::state::AppState;

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

impl NoteInput {
    fn text(&self) -> NoteText<'_> {
        NoteText {
            title: self.title.trim(),
            body: &self.body,
        }
    }
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

fn check(input: &NoteInput) -> Result<(), Error> {
    let bad = Error::InvalidNote;
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

fn note_id(path: Result<Path<String>, PathRejection>) -> Result<String, Error> {
    match path {
        Ok(Path(id)) if looks_like_id(&id) => Ok(id),
        _ => Err(Error::NotFound),
    }
}

/// `GET /api/v1/notes`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<NoteList>, Error> {
    let Query(q) =
        query.map_err(|_| Error::BadRequest("`limit` and `offset` must be integers".into()))?;
    let limit = q.limit.unwrap_or(50);
    let offset = q.offset.unwrap_or(0);
    if !(1..=MAX_LIMIT).contains(&limit) || offset < 0 {
        return Err(Error::BadRequest(
            "`limit` must be 1 to 200 and `offset` not negative".into(),
        ));
    }
    state.require_db()?;
    let notes = state.db.list_notes(&claims.sub, limit, offset).await?;
    Ok(Json(NoteList { notes }))
}

/// `POST /api/v1/notes`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    ApiJson(input): ApiJson<NoteInput>,
) -> Result<(StatusCode, Json<Note>), Error> {
    check(&input)?;
    state.require_db()?;
    let id = new_id()?;
    let now = state.clock.now();
    let note = state
        .db
        .insert_note(&claims.sub, &id, input.text(), now)
        .await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// `GET /api/v1/notes/{id}`.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Note>, Error> {
    let id = note_id(path)?;
    state.require_db()?;
    state
        .db
        .get_note(&claims.sub, &id)
        .await?
        .map(Json)
        .ok_or(Error::NotFound)
}

/// `PUT /api/v1/notes/{id}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    path: Result<Path<String>, PathRejection>,
    ApiJson(input): ApiJson<NoteInput>,
) -> Result<Json<Note>, Error> {
    let id = note_id(path)?;
    check(&input)?;
    state.require_db()?;
    let now = state.clock.now();
    state
        .db
        .update_note(&claims.sub, &id, input.text(), now)
        .await?
        .map(Json)
        .ok_or(Error::NotFound)
}

/// `DELETE /api/v1/notes/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Authenticated(claims): Authenticated,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Error> {
    let id = note_id(path)?;
    state.require_db()?;
    if state.db.delete_note(&claims.sub, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound)
    }
}
