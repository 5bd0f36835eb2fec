//! The code generated from `proto/oauthd/v1/token.proto`, and its descriptor set
//! for server reflection. Nothing else.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("oauthd.v1");

/// The encoded descriptor set, served by `grpc.reflection.v1`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("oauthd_descriptor");
