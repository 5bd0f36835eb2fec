//! Micro-benchmarks of the per-request cryptography: JWT signing and
//! verification for each `--signing-alg`, client-secret verification, and an
//! Argon2id password check at the production cost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use oauthd::tokens::credential::{CredentialKind, mint};
use oauthd::tokens::jwt::{self, JwtClaims};
use oauthd::tokens::keys::{KeyRing, SigningAlg, generate};
use oauthd::tokens::password::{hash_password, password_matches};
use oauthd::tokens::secret::{hash_secret, secret_matches};

const ALGORITHMS: [SigningAlg; 4] = [
    SigningAlg::Es256,
    SigningAlg::EdDsa,
    SigningAlg::Rs256,
    SigningAlg::Hs256,
];

fn claims() -> JwtClaims {
    JwtClaims {
        iss: "https://auth.example.com".into(),
        sub: "hVq0nYpJm3xR2b9ZkLwTfA".into(),
        aud: "https://auth.example.com".into(),
        exp: 1_900_000_000,
        iat: 1_899_996_400,
        nbf: 1_899_996_400,
        jti: "Jx3k9QmT0aZ7yVbN4cLpWg".into(),
        client_id: "hVq0nYpJm3xR2b9ZkLwTfA".into(),
        scope: "read write".into(),
        username: None,
    }
}

fn jwt_sign_and_verify(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt");
    for alg in ALGORITHMS {
        let ring = KeyRing::from_materials(&[generate(alg, 0, 0).unwrap()]).unwrap();
        let key = ring.signing_key(alg, 1).unwrap();
        let claims = claims();
        group.bench_with_input(BenchmarkId::new("sign", alg), &claims, |b, claims| {
            b.iter(|| jwt::sign(key, black_box(claims)).unwrap())
        });
        let token = jwt::sign(key, &claims).unwrap();
        group.bench_with_input(BenchmarkId::new("verify", alg), &token, |b, token| {
            b.iter(|| jwt::verify(&ring, black_box(token)).unwrap())
        });
    }
    group.finish();
}

fn client_secret_verification(c: &mut Criterion) {
    let secret = mint(CredentialKind::ClientSecret);
    let stored = hash_secret(&secret);
    c.bench_function("client_secret/verify", |b| {
        b.iter(|| secret_matches(black_box(&secret), &stored))
    });
}

fn argon2id_verification(c: &mut Criterion) {
    let hash = hash_password("correct horse battery staple").unwrap();
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    group.bench_function("argon2id/verify", |b| {
        b.iter(|| {
            assert!(password_matches(
                black_box("correct horse battery staple"),
                &hash
            ))
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    jwt_sign_and_verify,
    client_secret_verification,
    argon2id_verification
);
criterion_main!(benches);
