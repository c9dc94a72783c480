//! Writes the operator's CRDs as YAML. Each argument is a file whose name
//! says which: `authrealm.yaml` or `authclient.yaml`
//! (`cargo run -p operator --bin crdgen -- crds/authrealm.yaml crds/authclient.yaml`).
//! Without arguments, both go to stdout as one YAML stream.

use anyhow::bail;

fn main() -> anyhow::Result<()> {
    let paths: Vec<std::path::PathBuf> = std::env::args_os().skip(1).map(Into::into).collect();
    if paths.is_empty() {
        print!(
            "{}---\n{}",
            operator::crd::crd_yaml()?,
            operator::crd::client_crd_yaml()?
        );
        return Ok(());
    }
    for path in paths {
        let yaml = match path.file_name().and_then(|n| n.to_str()) {
            Some("authrealm.yaml") => operator::crd::crd_yaml()?,
            Some("authclient.yaml") => operator::crd::client_crd_yaml()?,
            _ => bail!(
                "{}: name the file authrealm.yaml or authclient.yaml",
                path.display()
            ),
        };
        std::fs::write(path, yaml)?;
    }
    Ok(())
}
