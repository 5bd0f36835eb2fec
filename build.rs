//! Compiles `proto/oauthd/v1/token.proto` and our subset of Envoy's ext_authz
//! protocol (`proto/envoy/service/auth/v3/external_auth.proto`) with tonic's
//! build crate, and writes the one descriptor set that server reflection serves.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    // An explicit PROTOC wins; otherwise the pinned protoc from the registry, so a
    // fresh machine needs no system package.
    match env::var_os("PROTOC") {
        Some(protoc) => config.protoc_executable(protoc),
        None => config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?),
    };
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // tonic-prost's codec, but a request that fails to decode is
        // INVALID_ARGUMENT with no decoder text (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::OauthdCodec")
        // google.rpc.Status (in Envoy's CheckResponse) is tonic-types' type;
        // proto/google/rpc/status.proto only describes it to protoc and
        // reflection.
        .extern_path(".google.rpc", "::tonic_types::pb")
        .file_descriptor_set_path(out_dir.join("oauthd_descriptor.bin"))
        .compile_with_config(
            config,
            &[
                "proto/oauthd/v1/token.proto",
                "proto/envoy/service/auth/v3/external_auth.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
