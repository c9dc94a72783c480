//! Local platform runner: starts auth-service and main-project on 127.0.0.1.

fn main() -> anyhow::Result<()> {
    Ok(())
}
