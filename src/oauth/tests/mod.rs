//! The core's own tests, over the in-memory store (`oauth::testing`): every
//! grant, every SPEC §4 error the core decides, introspection, revocation,
//! client authentication, rotation and replay, the browser flows of SPEC §7,
//! with `now` moved by hand.

mod authorization_code;
mod authorize;
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
use super::authorize::{AuthorizeParameters, Decision, Outcome, Redirect, authorize, decide};
use super::client_auth::ClientCredentials;
use super::error::OAuthError;
use super::grants::{GrantRequest, IssuedTokens, TokenRequest, issue_token};
use super::introspect::{ActiveToken, Introspection, introspect};
use super::model::{Client, GrantType, PkceRule, UnixTime, User, UserStatus};
use super::scope::ScopeSet;
use super::sessions;
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

/// Registers a client of the browser flows (SPEC §7): `authorization_code`,
/// `implicit` and `refresh_token`, scope `read write`, these redirect URIs,
/// and whether it skips consent and must use PKCE. [`change_client`] adjusts
/// anything else.
fn redirecting_client(
    core: &TestCore,
    id: &str,
    public: bool,
    redirect_uris: &[&str],
    skip_consent: bool,
    pkce: PkceRule,
) -> ClientCredentials {
    let grants = [
        GrantType::AuthorizationCode,
        GrantType::Implicit,
        GrantType::RefreshToken,
    ];
    let credentials = client_with(core, id, &grants, "read write", public);
    change_client(core, id, |client| {
        client.redirect_uris = redirect_uris.iter().map(|uri| (*uri).to_owned()).collect();
        client.skip_consent = skip_consent;
        client.pkce = pkce;
    });
    credentials
}

/// Changes a registered client, as `client update` does.
fn change_client(core: &TestCore, id: &str, change: impl FnOnce(&mut Client)) {
    let mut client = (*core.store.client_now(id)).clone();
    change(&mut client);
    core.store.put_client(client);
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

/// Where the browser-flow clients send their users back to.
const REDIRECT: &str = "https://app.example/cb";

/// RFC 7636 Appendix B's verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An authorization request, parameter by parameter in the order a browser
/// sends them; `None` is a value the transport could not decode.
#[derive(Debug, Clone)]
struct AuthRequest(Vec<(String, Option<String>)>);

impl AuthRequest {
    /// `response_type=code` for `client_id` on [`REDIRECT`], scope `read`, a
    /// `state` and the S256 challenge of [`VERIFIER`].
    fn code(client_id: &str) -> Self {
        Self(Vec::new())
            .set("response_type", "code")
            .set("client_id", client_id)
            .set("redirect_uri", REDIRECT)
            .set("scope", "read")
            .set("state", "xyz")
            .set("code_challenge", CHALLENGE)
            .set("code_challenge_method", "S256")
    }

    /// `response_type=token` for `client_id` on [`REDIRECT`], scope `read`
    /// and a `state`.
    fn token(client_id: &str) -> Self {
        Self(Vec::new())
            .set("response_type", "token")
            .set("client_id", client_id)
            .set("redirect_uri", REDIRECT)
            .set("scope", "read")
            .set("state", "xyz")
    }

    /// `name=value`, in place of every earlier `name`.
    fn set(self, name: &str, value: &str) -> Self {
        self.without(name).again(name, value)
    }

    /// One more `name=value`, after any earlier one.
    fn again(mut self, name: &str, value: &str) -> Self {
        self.0.push((name.to_owned(), Some(value.to_owned())));
        self
    }

    /// `name` with a value that could not be decoded, in place of any other.
    fn undecodable(mut self, name: &str) -> Self {
        self = self.without(name);
        self.0.push((name.to_owned(), None));
        self
    }

    /// The request without `name`.
    fn without(mut self, name: &str) -> Self {
        self.0.retain(|(known, _)| known != name);
        self
    }

    /// The parameters as the transport hands them to the core.
    fn params(&self) -> AuthorizeParameters {
        let mut params = AuthorizeParameters::default();
        for (name, value) in &self.0 {
            params.push(name, value.clone());
        }
        params
    }
}

/// Logs `user` in as the login page does: a new session; returns the cookie.
async fn session_of(core: &TestCore, user: &User, now: UnixTime) -> String {
    sessions::start(core, user, now).await.unwrap().id
}

/// `GET /oauth/authorize` from a browser with this session cookie, if any.
async fn ask(
    core: &TestCore,
    request: &AuthRequest,
    session: Option<&str>,
    now: UnixTime,
) -> Outcome {
    ask_with(core, &request.params(), session, now).await
}

/// [`ask`] with parameters the core produced itself.
async fn ask_with(
    core: &TestCore,
    params: &AuthorizeParameters,
    session: Option<&str>,
    now: UnixTime,
) -> Outcome {
    authorize(core, params, session, now).await
}

/// The consent form's `POST` from a browser with this session cookie, if any.
async fn answer(
    core: &TestCore,
    request: &AuthRequest,
    session: Option<&str>,
    decision: Decision,
    now: UnixTime,
) -> Outcome {
    decide(core, &request.params(), session, decision, now).await
}

/// The redirect an outcome must be.
fn redirect(outcome: Outcome) -> Redirect {
    match outcome {
        Outcome::Redirect(redirect) => redirect,
        other => panic!("expected a redirect, got {other:?}"),
    }
}

/// The value of `name` among a redirect's parameters, if there.
fn param<'a>(redirect: &'a Redirect, name: &str) -> Option<&'a str> {
    redirect
        .params
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| value.as_str())
}
