//! OP's integration tests, one binary: OP and an in-process MA over real
//! HTTP, on Postgres + Redis and on SQLite + memory (the same test bodies).

mod bad_input;
mod faults;
mod flow;
mod helpers;
mod hostile;
mod keys;
mod limits;
mod ports;
mod properties;
mod redis_loss;
