//! Architecture invariants, checked as tests (README, "Architecture").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The file without its comment lines: the invariants are about code, and the
/// comments are free to name what the code avoids.
fn code_lines(file: &Path) -> String {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `file` as a path from the crate's root, such as `src/oauth/validate.rs`.
fn relative(file: &Path) -> String {
    file.strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_protocol_core_imports_no_transport_and_no_database() {
    for file in rust_files(&root().join("src/oauth")) {
        let code = code_lines(&file);
        for forbidden in [
            "tonic::",
            "axum::",
            "sea_orm::",
            "hyper::",
            "std::fs",
            "tokio::net",
        ] {
            assert!(
                !code.contains(forbidden),
                "{} uses {forbidden}",
                file.display()
            );
        }
    }
}

#[test]
fn only_the_store_and_the_migrations_touch_the_database() {
    for file in rust_files(&root().join("src")) {
        let relative = relative(&file);
        if relative.starts_with("src/store/") {
            continue;
        }
        let code = code_lines(&file);
        assert!(
            !code.contains("sea_orm"),
            "{relative} uses sea_orm outside src/store"
        );
        for sql in ["SELECT ", "UPDATE ", "INSERT INTO", "DELETE FROM"] {
            assert!(!code.contains(sql), "{relative} contains SQL ({sql})");
        }
    }
}

#[test]
fn nothing_but_the_server_depends_on_the_http_shim() {
    for file in rust_files(&root().join("src")) {
        let relative = relative(&file);
        if relative.starts_with("src/http/")
            || relative == "src/server.rs"
            || relative == "src/lib.rs"
        {
            continue;
        }
        assert!(
            !code_lines(&file).contains("crate::http"),
            "{relative} depends on the HTTP shim"
        );
    }
}

/// Files under `src/` (as `src/...` paths) whose code contains `needle`.
fn files_using(needle: &str) -> Vec<String> {
    rust_files(&root().join("src"))
        .into_iter()
        .filter(|file| code_lines(file).contains(needle))
        .map(|file| relative(&file))
        .collect()
}

/// Where a storage method may be called, beside its definition (the trait in
/// `oauth/storage.rs`), its implementations (`src/store/`, the in-memory
/// `oauth/testing.rs`) and the core's tests.
fn beside_the_storage(path: &str) -> bool {
    path == "src/oauth/storage.rs"
        || path == "src/oauth/testing.rs"
        || path.starts_with("src/store/")
        || path.starts_with("src/oauth/tests/")
}

#[test]
fn only_the_validator_decides_that_an_access_token_is_valid() {
    // A JWT's signature and an opaque token's record are read in one place;
    // everyone else (introspection, revocation, the request check) asks it.
    for needle in ["verify_jwt(", "verified_jwts.verify(", ".find_opaque("] {
        let users = files_using(needle);
        assert!(
            users.contains(&"src/oauth/validate.rs".to_owned()),
            "{users:?}"
        );
        for path in users {
            assert!(
                path == "src/oauth/validate.rs" || beside_the_storage(&path),
                "{path} calls {needle} instead of asking oauth/validate.rs"
            );
        }
    }
}

#[test]
fn grant_requests_are_typed_once_at_the_edge() {
    let users = files_using("GrantRequest::parse(");
    assert!(!users.is_empty());
    for path in users {
        assert!(
            path.starts_with("src/grpc/") || path.starts_with("src/oauth/tests/"),
            "{path} parses grant parameters; the gRPC edge does that once"
        );
    }
}

/// The code of a file before its unit tests (a trailing `#[cfg(test)] mod`),
/// or nothing for a file that is all tests.
fn production_code(file: &Path) -> String {
    let relative = relative(file);
    if relative.ends_with("/tests.rs") || relative.contains("/tests/") {
        return String::new();
    }
    let code = code_lines(file);
    match code.find("#[cfg(test)]\nmod tests") {
        Some(at) => code[..at].to_owned(),
        None => code,
    }
}

#[test]
fn only_the_credential_format_spells_the_prefixes_and_only_the_classifier_reads_them() {
    for file in rust_files(&root().join("src")) {
        let relative = relative(&file);
        let code = production_code(&file);
        if relative != "src/tokens/credential.rs" {
            for prefix in ["\"oat_", "\"ort_", "\"oac_", "\"oak_", "\"ocs_"] {
                assert!(
                    !code.contains(prefix),
                    "{relative} spells the prefix {prefix}; CredentialKind::prefix is the one place"
                );
            }
        }
        if !matches!(
            relative.as_str(),
            "src/tokens/credential.rs" | "src/oauth/presented.rs"
        ) {
            assert!(
                !code.contains("credential::parse("),
                "{relative} parses a credential; ask oauth/presented.rs's classify"
            );
        }
    }
    assert!(production_code(&root().join("src/oauth/presented.rs")).contains("credential::parse("));
}

#[test]
fn only_the_tls_module_configures_rustls_or_runs_a_handshake() {
    for needle in ["ServerConfig", "TlsAcceptor"] {
        let users = files_using(needle);
        assert!(!users.is_empty(), "nothing uses {needle}");
        for path in users {
            assert!(
                path.starts_with("src/tls/"),
                "{path} uses {needle}; TLS is configured and run in src/tls"
            );
        }
    }
}
