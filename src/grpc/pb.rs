//! The code generated from `proto/oauthd/v1/token.proto` and from our subset of
//! Envoy's ext_authz protocol (`proto/envoy/`), and the descriptor set of both
//! for server reflection. Nothing else.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("oauthd.v1");

/// The encoded descriptor set, served by `grpc.reflection.v1`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("oauthd_descriptor");

/// Our subset of Envoy's ext_authz protocol (`proto/envoy/`), in modules that
/// mirror its packages, as the generated code's paths between them expect.
pub mod envoy {
    pub mod config {
        pub mod core {
            pub mod v3 {
                tonic::include_proto!("envoy.config.core.v3");
            }
        }
    }
    pub mod service {
        pub mod auth {
            pub mod v3 {
                tonic::include_proto!("envoy.service.auth.v3");
            }
        }
    }
    pub mod r#type {
        pub mod v3 {
            // prost names the file after the escaped module name.
            tonic::include_proto!("envoy.r#type.v3");
        }
    }
}
