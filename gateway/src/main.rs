//! The `edgevisor` binary. The gateway service lands with its own issue; until
//! then this only says so.

fn main() -> std::process::ExitCode {
    eprintln!("edgevisor: the gateway service is not built yet; run `cargo run --release -p edgevisor-runtime --example tree` to see the supervision runtime");
    std::process::ExitCode::from(2)
}
