//! The authorization endpoint (RFC 6749 §3.1, §4.1.1, §4.2.1; SPEC §7): what
//! happens to a request, decided once for every transport.
//!
//! Risks, first:
//! - an open redirect: until the client and the redirect URI are both known
//!   good, every error is oauthd's own page ([`Outcome::Page`]), never a
//!   redirect; the URI must be registered exactly (`redirect_uri.rs`);
//! - code injection and downgrade: PKCE is S256 only, required unless a
//!   confidential client opted out, and the challenge is bound to the code;
//! - a request that skips a step: the login and consent forms carry the
//!   request's parameters, and every step checks all of them again, so a
//!   forged form gets no further than the same request in the address bar.
//!
//! The checks run in a fixed order: client, redirect URI (errors until here
//! are pages), other parameters' shape, response type, scope, PKCE, prompt,
//! login, consent. The transport renders an [`Outcome`]; it decides nothing.

use std::sync::Arc;

use super::Core;
use super::error::{AuthorizationError, AuthorizePageError, OAuthError};
use super::issuance::{Owner, mint_access, persist_access, resolve_scope};
use super::model::{AuthorizationCodeRecord, Client, GrantType, PkceRule, UnixTime, User};
use super::pkce;
use super::redirect_uri;
use super::scope::ScopeSet;
use super::sessions::{self, StartedSession};
use super::storage::Stores;
use super::user_auth::{LoginAttempt, authenticate_user};
use crate::tokens::credential::{self, CredentialKind};
use crate::tokens::secret::hash_secret;

/// `--authorization-code-ttl`'s default, seconds (SPEC §2).
pub const DEFAULT_AUTHORIZATION_CODE_TTL: i64 = 60;

/// The longest `state` echoed back. A client's state is a nonce or a short
/// reference; longer ones are refused rather than carried through pages and
/// redirect headers.
pub const MAX_STATE_BYTES: usize = 4096;

/// The parameters of an authorization request, as the transport decoded them.
pub const PARAMETER_NAMES: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
];

/// The request's parameters, in the order they came. A value the transport
/// could not decode is `None`. Only [`PARAMETER_NAMES`] are kept: RFC 6749
/// §3.1 has unknown ones ignored.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParameters {
    entries: Vec<(&'static str, Option<String>)>,
}

/// One parameter, as [`AuthorizeParameters::get`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param<'a> {
    Absent,
    One(&'a str),
    Repeated,
    Malformed,
}

impl AuthorizeParameters {
    /// Adds a parameter; ignores names the endpoint does not know.
    pub fn push(&mut self, name: &str, value: Option<String>) {
        if let Some(known) = PARAMETER_NAMES.iter().find(|known| **known == name) {
            self.entries.push((known, value));
        }
    }

    /// Every parameter, in order, for the forms that carry the request on.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.entries
            .iter()
            .filter_map(|(name, value)| value.as_deref().map(|value| (*name, value)))
    }

    /// The parameters with `prompt` narrowed to what remains to be done once
    /// the user has logged in: `login` is done.
    pub fn after_login(&self) -> AuthorizeParameters {
        let entries = self
            .entries
            .iter()
            .filter_map(|(name, value)| {
                if *name != "prompt" {
                    return Some((*name, value.clone()));
                }
                let rest: Vec<&str> = value
                    .as_deref()?
                    .split(' ')
                    .filter(|word| !word.is_empty() && *word != "login")
                    .collect();
                (!rest.is_empty()).then(|| (*name, Some(rest.join(" "))))
            })
            .collect();
        AuthorizeParameters { entries }
    }

    /// RFC 6749 §3.1: a parameter sent without a value counts as omitted, and
    /// one sent twice is an error.
    fn get(&self, name: &str) -> Param<'_> {
        let mut found = Param::Absent;
        for (_, value) in self.entries.iter().filter(|(known, _)| *known == name) {
            found = match (found, value.as_deref()) {
                (Param::Absent, Some("")) => Param::Absent,
                (Param::Absent, Some(value)) => Param::One(value),
                (Param::Absent, None) => Param::Malformed,
                (Param::One(_), Some("")) => found,
                _ => Param::Repeated,
            };
        }
        found
    }
}

/// What the request asks to get back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    /// RFC 6749 §4.1: a code, in the query.
    Code,
    /// RFC 6749 §4.2: an access token, in the fragment.
    Token,
}

/// The `prompt` values (OpenID Connect Core §3.1.2.1, which SPEC §7 takes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

/// A request whose every parameter checked out: what the pages and the
/// answer need.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    /// The client.
    pub client: Arc<Client>,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// The `redirect_uri` parameter, when the request carried one: the code
    /// is bound to it (RFC 6749 §4.1.3).
    redirect_uri_given: Option<String>,
    /// `code` or `token`.
    pub response_type: ResponseType,
    /// The scope asked for (the client's whole scope when none was).
    pub scope: ScopeSet,
    /// `state`, echoed back.
    pub state: Option<String>,
    code_challenge: Option<String>,
    prompt: Prompt,
}

/// Where an answer goes: the client's redirect URI, with parameters in the
/// query (`code`) or the fragment (`token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The registered URI, as registered.
    pub uri: String,
    /// The parameters, in order.
    pub params: Vec<(&'static str, String)>,
    /// Whether they go in the fragment.
    pub in_fragment: bool,
}

impl Redirect {
    /// The `Location`: the parameters form-encoded onto the URI, after its own
    /// query if it has one (RFC 6749 §3.1.2 keeps it).
    pub fn location(&self) -> String {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.params.iter().map(|(name, value)| (*name, value)))
            .finish();
        let separator = if self.in_fragment {
            '#'
        } else if self.uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{separator}{encoded}", self.uri)
    }
}

/// What the endpoint answers.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// oauthd's error page, status 400; never a redirect.
    Page(AuthorizePageError),
    /// Back to the client, with a code, a token or an error.
    Redirect(Redirect),
    /// The login page, for this request.
    Login(Box<ValidRequest>),
    /// The consent page, for this request and user.
    Consent(Box<ValidRequest>, Box<User>),
}

/// What the user decided on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `decision=allow`.
    Allow,
    /// `decision=deny`.
    Deny,
}

/// `GET` or `POST /oauth/authorize`: the request, and the session cookie's
/// value, if the browser sent one.
pub async fn authorize<S: Stores>(
    core: &Core<S>,
    params: &AuthorizeParameters,
    session: Option<&str>,
    now: UnixTime,
) -> Outcome {
    let request = match validate(core, params).await {
        Ok(request) => request,
        Err(outcome) => return outcome,
    };
    let user = match session_user(core, &request, session, now).await {
        Ok(user) => user,
        Err(outcome) => return outcome,
    };
    let user = match user {
        Some(user) if !request.prompt.login => user,
        _ if request.prompt.none => {
            return error_redirect(core, &request, AuthorizationError::login_required());
        }
        _ => return Outcome::Login(Box::new(request)),
    };
    match needs_consent(core, &request, &user).await {
        Err(err) => error_redirect(core, &request, err.into()),
        Ok(false) => issue(core, &request, &user, now).await,
        Ok(true) if request.prompt.none => {
            error_redirect(core, &request, AuthorizationError::consent_required())
        }
        Ok(true) => Outcome::Consent(Box::new(request), Box::new(user)),
    }
}

/// What a login attempt on the login page comes to.
pub enum LoginOutcome {
    /// The request itself is refused: answer as [`authorize`] would.
    Refused(Outcome),
    /// The login failed: the login page again, with the SPEC §4 description.
    Failed(Box<ValidRequest>, OAuthError),
    /// A new session; the browser goes on to the request without `login` in
    /// its `prompt` ([`AuthorizeParameters::after_login`]).
    LoggedIn(StartedSession),
}

/// The login form's `POST`: the request again, the attempt, and the session
/// cookie the browser already had, if any. The login decision is the
/// password grant's ([`authenticate_user`]), so the page gives the same
/// answers in the same order and counts towards the same lockout; a success
/// starts a new session, never reuses one, and ends the one it replaces.
pub(crate) async fn log_in<S: Stores>(
    core: &Core<S>,
    params: &AuthorizeParameters,
    attempt: &LoginAttempt,
    previous_session: Option<&str>,
    now: UnixTime,
) -> LoginOutcome {
    let request = match validate(core, params).await {
        Ok(request) => request,
        Err(outcome) => return LoginOutcome::Refused(outcome),
    };
    if attempt.login.is_empty() {
        return LoginOutcome::Failed(Box::new(request), OAuthError::missing_username());
    }
    let user = match authenticate_user(core, attempt).await {
        Ok(user) => user,
        Err(err) => return LoginOutcome::Failed(Box::new(request), err),
    };
    if let Some(previous) = previous_session
        && let Err(err) = sessions::end(core, previous).await
    {
        return LoginOutcome::Refused(error_redirect(core, &request, err.into()));
    }
    match sessions::start(core, &user, now).await {
        Ok(session) => LoginOutcome::LoggedIn(session),
        Err(err) => LoginOutcome::Refused(error_redirect(core, &request, err.into())),
    }
}

/// The consent form's `POST`: the request again, the session cookie's value,
/// and the decision.
pub async fn decide<S: Stores>(
    core: &Core<S>,
    params: &AuthorizeParameters,
    session: Option<&str>,
    decision: Decision,
    now: UnixTime,
) -> Outcome {
    let request = match validate(core, params).await {
        Ok(request) => request,
        Err(outcome) => return outcome,
    };
    let Some(user) = (match session_user(core, &request, session, now).await {
        Ok(user) => user,
        Err(outcome) => return outcome,
    }) else {
        return Outcome::Login(Box::new(request));
    };
    if decision == Decision::Deny {
        return error_redirect(core, &request, AuthorizationError::access_denied());
    }
    if let Err(err) = remember_consent(core, &request, &user, now).await {
        return error_redirect(core, &request, err.into());
    }
    issue(core, &request, &user, now).await
}

/// The user the session cookie names; a database that does not answer is
/// `temporarily_unavailable` for the client.
async fn session_user<S: Stores>(
    core: &Core<S>,
    request: &ValidRequest,
    session: Option<&str>,
    now: UnixTime,
) -> Result<Option<User>, Outcome> {
    let Some(cookie) = session else {
        return Ok(None);
    };
    sessions::user_of(core, cookie, now)
        .await
        .map_err(|err| error_redirect(core, request, err.into()))
}

/// Checks every parameter, in the order of the module's documentation.
/// `Ok` is a request worth showing a page for; `Err` is the answer.
pub async fn validate<S: Stores>(
    core: &Core<S>,
    params: &AuthorizeParameters,
) -> Result<ValidRequest, Outcome> {
    let client = find_client(core, params).await.map_err(Outcome::Page)?;
    let redirect_uri = find_redirect_uri(&client, params).map_err(Outcome::Page)?;
    let response_type_text = match params.get("response_type") {
        Param::One(text) => Some(text),
        _ => None,
    };
    let response_type = match response_type_text {
        Some("code") => Some(ResponseType::Code),
        Some("token") => Some(ResponseType::Token),
        _ => None,
    };
    // From here on, errors go back to the client, in the query unless the
    // request asked for a token.
    let state = match params.get("state") {
        Param::One(state) if state.len() <= MAX_STATE_BYTES => Some(state.to_owned()),
        _ => None,
    };
    let mut request = ValidRequest {
        client,
        redirect_uri_given: match params.get("redirect_uri") {
            Param::One(uri) => Some(uri.to_owned()),
            _ => None,
        },
        redirect_uri,
        response_type: response_type.unwrap_or(ResponseType::Code),
        scope: ScopeSet::default(),
        state,
        code_challenge: None,
        prompt: Prompt::default(),
    };
    let refuse =
        |request: &ValidRequest, err: AuthorizationError| Err(error_redirect(core, request, err));
    for name in PARAMETER_NAMES {
        match params.get(name) {
            Param::Repeated => {
                return refuse(&request, AuthorizationError::repeated_parameter(name));
            }
            Param::Malformed => {
                return refuse(&request, AuthorizationError::malformed_parameter(name));
            }
            Param::Absent | Param::One(_) => {}
        }
    }
    if let Param::One(state) = params.get("state")
        && state.len() > MAX_STATE_BYTES
    {
        return refuse(
            &request,
            AuthorizationError::state_too_long(MAX_STATE_BYTES),
        );
    }
    let Some(text) = response_type_text else {
        return refuse(
            &request,
            AuthorizationError::missing_parameter("response_type"),
        );
    };
    let Some(response_type) = response_type else {
        return refuse(
            &request,
            AuthorizationError::unsupported_response_type(text),
        );
    };
    let grant = match response_type {
        ResponseType::Code => GrantType::AuthorizationCode,
        ResponseType::Token => GrantType::Implicit,
    };
    if !request.client.allows(grant) {
        return refuse(
            &request,
            AuthorizationError::response_type_not_allowed(text),
        );
    }
    let scope = match params.get("scope") {
        Param::One(text) => Some(text),
        _ => None,
    };
    request.scope = match resolve_scope(&request.client, scope) {
        Ok(scope) => scope,
        Err(err) => return refuse(&request, err.into()),
    };
    if response_type == ResponseType::Code {
        request.code_challenge = match code_challenge(&request.client, params) {
            Ok(challenge) => challenge,
            Err(err) => return refuse(&request, err),
        };
    }
    request.prompt = match prompt(params) {
        Ok(prompt) => prompt,
        Err(err) => return refuse(&request, err),
    };
    Ok(request)
}

async fn find_client<S: Stores>(
    core: &Core<S>,
    params: &AuthorizeParameters,
) -> Result<Arc<Client>, AuthorizePageError> {
    let id = match params.get("client_id") {
        Param::One(id) => id,
        Param::Absent => return Err(AuthorizePageError::MissingClientId),
        Param::Repeated | Param::Malformed => return Err(AuthorizePageError::MalformedClientId),
    };
    match core.store.client(id).await {
        Ok(Some(client)) if client.enabled => Ok(client),
        Ok(_) => Err(AuthorizePageError::UnknownClient),
        Err(_) => Err(AuthorizePageError::Unavailable),
    }
}

/// The redirect URI to answer on: the one given, if registered exactly, or
/// the client's only one when none is given (RFC 6749 §3.1.2.3).
fn find_redirect_uri(
    client: &Client,
    params: &AuthorizeParameters,
) -> Result<String, AuthorizePageError> {
    match params.get("redirect_uri") {
        Param::One(given) => match redirect_uri::registered(client, given) {
            // A loopback URI matched on another port answers on the port given.
            Some(_) => Ok(given.to_owned()),
            None => Err(AuthorizePageError::UnregisteredRedirectUri),
        },
        Param::Absent => match client.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(AuthorizePageError::UnregisteredRedirectUri),
            _ => Err(AuthorizePageError::MissingRedirectUri),
        },
        Param::Repeated | Param::Malformed => Err(AuthorizePageError::MalformedRedirectUri),
    }
}

/// The S256 challenge, checked; `None` when the client may go without and
/// sent none.
fn code_challenge(
    client: &Client,
    params: &AuthorizeParameters,
) -> Result<Option<String>, AuthorizationError> {
    let method = match params.get("code_challenge_method") {
        Param::One(method) => Some(method),
        _ => None,
    };
    match params.get("code_challenge") {
        Param::One(challenge) => {
            // RFC 7636 §4.3: no method means `plain`, which is refused.
            if method != Some(pkce::S256) {
                return Err(AuthorizationError::pkce_method_unsupported());
            }
            if !pkce::is_s256_challenge(challenge) {
                return Err(AuthorizationError::pkce_challenge_malformed());
            }
            Ok(Some(challenge.to_owned()))
        }
        _ if method.is_some() => Err(AuthorizationError::missing_parameter("code_challenge")),
        _ if client.is_public() || client.pkce == PkceRule::Required => {
            Err(AuthorizationError::pkce_required())
        }
        _ => Ok(None),
    }
}

fn prompt(params: &AuthorizeParameters) -> Result<Prompt, AuthorizationError> {
    let Param::One(text) = params.get("prompt") else {
        return Ok(Prompt::default());
    };
    let mut prompt = Prompt::default();
    for word in text.split(' ').filter(|word| !word.is_empty()) {
        match word {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => return Err(AuthorizationError::prompt_invalid()),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(AuthorizationError::prompt_invalid());
    }
    Ok(prompt)
}

/// Whether the user must be asked: never for a client that skips consent;
/// always when the request says `prompt=consent`; otherwise unless the user
/// approved every requested scope for this client before.
async fn needs_consent<S: Stores>(
    core: &Core<S>,
    request: &ValidRequest,
    user: &User,
) -> Result<bool, OAuthError> {
    if request.client.skip_consent {
        return Ok(false);
    }
    if request.prompt.consent {
        return Ok(true);
    }
    let approved = core
        .store
        .consented_scope(&user.id, &request.client.id)
        .await?;
    Ok(!approved.is_some_and(|approved| request.scope.is_subset_of(&approved)))
}

/// Remembers the approval, added to what the user approved before.
async fn remember_consent<S: Stores>(
    core: &Core<S>,
    request: &ValidRequest,
    user: &User,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let client_id = &request.client.id;
    let mut approved = core
        .store
        .consented_scope(&user.id, client_id)
        .await?
        .unwrap_or_default();
    approved.extend(request.scope.clone());
    core.store
        .remember_consent(&user.id, client_id, &approved, now)
        .await?;
    Ok(())
}

/// The answer: a code, or (implicit) an access token and never a refresh
/// token.
async fn issue<S: Stores>(
    core: &Core<S>,
    request: &ValidRequest,
    user: &User,
    now: UnixTime,
) -> Outcome {
    let issued = match request.response_type {
        ResponseType::Code => issue_code(core, request, user, now).await,
        ResponseType::Token => issue_token(core, request, user, now).await,
    };
    match issued {
        Ok(params) => redirect_back(core, request, params),
        Err(err) => error_redirect(core, request, err.into()),
    }
}

async fn issue_code<S: Stores>(
    core: &Core<S>,
    request: &ValidRequest,
    user: &User,
    now: UnixTime,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let code = credential::mint(CredentialKind::AuthorizationCode);
    let record = AuthorizationCodeRecord {
        code_hash: hash_secret(&code),
        client_id: request.client.id.clone(),
        user_id: user.id.clone(),
        username: user.username.clone(),
        redirect_uri: request.redirect_uri_given.clone(),
        scope: request.scope.clone(),
        code_challenge: request.code_challenge.clone(),
        issued_at: now,
        expires_at: now + core.policy.authorization_code_ttl,
        used_at: None,
        issued: None,
    };
    core.store.insert_code(&record).await?;
    Ok(vec![("code", code)])
}

async fn issue_token<S: Stores>(
    core: &Core<S>,
    request: &ValidRequest,
    user: &User,
    now: UnixTime,
) -> Result<Vec<(&'static str, String)>, OAuthError> {
    let access = mint_access(
        core,
        &request.client,
        Some(Owner::from(user)),
        &request.scope,
        now,
    )?;
    persist_access(core, &access).await?;
    Ok(vec![
        ("access_token", access.token),
        ("token_type", "Bearer".to_owned()),
        ("expires_in", (access.claims.exp - now).to_string()),
        ("scope", request.scope.to_string()),
    ])
}

/// An error sent back to the client (RFC 6749 §4.1.2.1), with `state` and,
/// per RFC 9207, `iss`.
fn error_redirect<S>(core: &Core<S>, request: &ValidRequest, err: AuthorizationError) -> Outcome {
    let params = vec![
        ("error", err.code.to_owned()),
        ("error_description", err.description.into_owned()),
    ];
    redirect_back(core, request, params)
}

/// Back to the client's redirect URI with `params`, then `state` (when sent)
/// and `iss`: in the query for `code`, in the fragment for `token`.
fn redirect_back<S>(
    core: &Core<S>,
    request: &ValidRequest,
    mut params: Vec<(&'static str, String)>,
) -> Outcome {
    if let Some(state) = &request.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", core.policy.issuer.clone()));
    Outcome::Redirect(Redirect {
        uri: request.redirect_uri.clone(),
        params,
        in_fragment: request.response_type == ResponseType::Token,
    })
}
