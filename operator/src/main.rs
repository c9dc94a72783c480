//! `authrealm-operator`: placeholder until the controller lands.

fn main() {}
