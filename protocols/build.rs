//! Compiles the .proto files with protox (a pure-Rust protoc), so no system protoc is needed,
//! and writes the file-descriptor set used by gRPC server reflection.
use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/common.proto",
    "proto/gateway.proto",
    "proto/auth.proto",
    "proto/project.proto",
    "proto/simulation.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for p in PROTOS {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("sdsim_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
