//! Micro-benchmark of JWT introspection end to end inside the process: client
//! authentication, signature, revocation and status checks, through the core on
//! a real (SQLite) store, without a network in between.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use oauthd::clock;
use oauthd::oauth::client_auth::ClientCredentials;
use oauthd::oauth::grants::{GrantRequest, TokenRequest, issue_token};
use oauthd::oauth::introspect::{Introspection, introspect};
use oauthd::oauth::login_throttle::{LoginThrottle, ThrottlePolicy};
use oauthd::oauth::model::{GrantType, PkceRule};
use oauthd::oauth::revocation_limit::RevocationLimit;
use oauthd::oauth::scope::ScopeSet;
use oauthd::oauth::{Core, Policy, TokenFormat};
use oauthd::store::{ClientSpec, SeaStore};
use oauthd::tokens::jwt::VerifiedTokens;
use oauthd::tokens::keys::SigningAlg;
use oauthd::tokens::password::PasswordVerifier;
use oauthd::tokens::secret::Secret;

fn jwt_introspection(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let (core, credentials, token) = runtime.block_on(async {
        let store = SeaStore::open(&url, 4, None).await.unwrap();
        store.sync_now().await.unwrap();
        store
            .ensure_signing_key(SigningAlg::Es256, clock::now())
            .await
            .unwrap();
        let spec = ClientSpec {
            name: "bench".into(),
            grant_types: vec![GrantType::ClientCredentials],
            scopes: ScopeSet::parse("read write").unwrap(),
            access_token_ttl: None,
            public: false,
            redirect_uris: Vec::new(),
            skip_consent: false,
            pkce: PkceRule::Required,
        };
        let client = store.create_client(spec, clock::now()).await.unwrap();
        store.sync_now().await.unwrap();
        let credentials = ClientCredentials {
            client_id: client.client.id.clone(),
            client_secret: client.secret.map(Secret::new),
        };
        let core = Arc::new(Core {
            store,
            policy: Policy {
                issuer: "https://auth.example.com".into(),
                audience: "https://auth.example.com".into(),
                access_token_ttl: 3600,
                refresh_token_ttl: 86_400,
                refresh_token_reuse_grace: 0,
                token_format: TokenFormat::Jwt,
                signing_alg: SigningAlg::Es256,
                lock_after_failed_logins: 5,
                authorization_code_ttl: 60,
                session_ttl: 86_400,
            },
            passwords: PasswordVerifier::new(1, 8).unwrap(),
            verified_jwts: VerifiedTokens::new(1024),
            login_throttle: LoginThrottle::new(ThrottlePolicy::default()),
            revocation_limit: RevocationLimit::new(0),
        });
        let request = TokenRequest {
            client: credentials.clone(),
            grant: Ok(GrantRequest::ClientCredentials { scope: None }),
            origin: None,
        };
        let token = issue_token(&core, request, clock::now())
            .await
            .unwrap()
            .access_token;
        (core, credentials, token)
    });
    c.bench_function("introspect/jwt_in_process", |b| {
        b.to_async(&runtime).iter(|| async {
            let answer = introspect(&core, &credentials, &token, None, clock::now())
                .await
                .unwrap();
            assert!(matches!(answer, Introspection::Active(_)));
        })
    });
}

criterion_group!(benches, jwt_introspection);
criterion_main!(benches);
