//! Writes the `AuthRealm` CRD as YAML: to stdout, or to the file given as the
//! only argument (`cargo run -p operator --bin crdgen -- crds/authrealm.yaml`).

fn main() -> anyhow::Result<()> {
    let yaml = operator::crd::crd_yaml()?;
    match std::env::args_os().nth(1) {
        Some(path) => std::fs::write(path, yaml)?,
        None => print!("{yaml}"),
    }
    Ok(())
}
