//! The core's own tests, over the in-memory store (`oauth::testing`): every
//! grant, every SPEC §4 error the core decides, introspection, revocation,
//! client authentication, rotation and replay, with `now` moved by hand.

mod check;
mod client_auth;
mod credentials;
mod grants;
mod introspection;
mod login;
mod refresh;
mod revocation;

use super::Core;
use super::TokenFormat;
use super::client_auth::ClientCredentials;
use super::error::OAuthError;
use super::grants::{GrantRequest, IssuedTokens, TokenRequest, issue_token};
use super::introspect::{ActiveToken, Introspection, introspect};
use super::model::{Client, GrantType, PkceRule, UnixTime, User, UserStatus};
use super::scope::ScopeSet;
use super::testing::{MemoryStore, T0, test_core};
use crate::tokens::keys::SigningAlg;
use crate::tokens::password::hash_password;
use crate::tokens::secret::{Secret, hash_secret};

const SECRET: &str = "s3cret-of-the-resource-server-0123456789abc";
const PASSWORD: &str = "correct horse battery staple";

type TestCore = Core<MemoryStore>;

fn jwt_core() -> TestCore {
    test_core(TokenFormat::Jwt, SigningAlg::Es256)
}

fn opaque_core() -> TestCore {
    test_core(TokenFormat::Opaque, SigningAlg::Es256)
}

/// Registers a confidential client with every grant and `read write`.
fn confidential(core: &TestCore, id: &str) -> ClientCredentials {
    client_with(core, id, &GrantType::ALL, "read write", false)
}

/// Registers a client and returns the credentials it authenticates with.
fn client_with(
    core: &TestCore,
    id: &str,
    grants: &[GrantType],
    scopes: &str,
    public: bool,
) -> ClientCredentials {
    core.store.put_client(Client {
        id: id.into(),
        name: id.into(),
        secret_hash: (!public).then(|| hash_secret(SECRET)),
        grant_types: grants.to_vec(),
        scopes: ScopeSet::parse(scopes).unwrap(),
        access_token_ttl: None,
        enabled: true,
        redirect_uris: Vec::new(),
        skip_consent: false,
        pkce: PkceRule::Required,
    });
    ClientCredentials {
        client_id: id.into(),
        client_secret: (!public).then(|| Secret::new(SECRET)),
    }
}

/// Registers a user whose password is [`PASSWORD`].
fn user(core: &TestCore, username: &str) -> User {
    let user = User {
        id: format!("id-{username}"),
        username: username.into(),
        email: Some(format!("{username}@example.com")),
        phone: None,
        password_hash: hash_password(PASSWORD).unwrap(),
        status: UserStatus::default(),
        failed_logins: 0,
    };
    core.store.put_user(user.clone());
    user
}

fn client_credentials_grant(scope: Option<&str>) -> GrantRequest {
    GrantRequest::ClientCredentials {
        scope: scope.map(str::to_owned),
    }
}

fn password_grant(username: &str, password: &str) -> GrantRequest {
    GrantRequest::Password {
        username: username.into(),
        password: Secret::new(password),
        scope: None,
    }
}

fn refresh_grant(refresh_token: &str, scope: Option<&str>) -> GrantRequest {
    GrantRequest::RefreshToken {
        refresh_token: Secret::new(refresh_token),
        scope: scope.map(str::to_owned),
    }
}

async fn token(
    core: &TestCore,
    client: &ClientCredentials,
    grant: GrantRequest,
    now: UnixTime,
) -> Result<IssuedTokens, OAuthError> {
    let request = TokenRequest {
        client: client.clone(),
        grant: Ok(grant),
        origin: None,
    };
    issue_token(core, request, now).await
}

/// A password-grant login of `username` that must succeed.
async fn login(core: &TestCore, client: &ClientCredentials, username: &str) -> IssuedTokens {
    token(core, client, password_grant(username, PASSWORD), T0)
        .await
        .unwrap()
}

/// Introspects as a resource server `rs` that the test registered.
async fn introspect_at(
    core: &TestCore,
    caller: &ClientCredentials,
    token: &str,
    now: UnixTime,
) -> Introspection {
    introspect(core, caller, token, None, now).await.unwrap()
}

fn active(answer: Introspection) -> ActiveToken {
    match answer {
        Introspection::Active(token) => *token,
        Introspection::Inactive => panic!("expected an active token"),
    }
}

/// The SPEC §4 description of an error, for assertions.
fn described(result: Result<IssuedTokens, OAuthError>) -> (&'static str, String) {
    let err = result.unwrap_err();
    (err.code(), err.description().to_owned())
}
