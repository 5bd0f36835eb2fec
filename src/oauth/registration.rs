//! Which clients may be registered (SPEC §3, §7): the rules `client create`
//! and `client update` apply to the client they would leave behind.

use super::model::{Client, GrantType, PkceRule};
use super::redirect_uri::check_registrable;

/// What the registration rules look at in a client.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// The grant types it may use.
    pub grant_types: &'a [GrantType],
    /// A public client has no secret.
    pub public: bool,
    /// Its redirect URIs, as they would be stored.
    pub redirect_uris: &'a [String],
    /// Whether it skips the consent page.
    pub skip_consent: bool,
    /// Whether its authorization requests must use PKCE.
    pub pkce: PkceRule,
}

impl<'a> Registration<'a> {
    /// What `client` is registered with.
    pub fn of(client: &'a Client) -> Self {
        Self {
            grant_types: &client.grant_types,
            public: client.is_public(),
            redirect_uris: &client.redirect_uris,
            skip_consent: client.skip_consent,
            pkce: client.pkce,
        }
    }
}

/// Whether a client registered so is allowed; `Err` is a one-line reason
/// that names the command-line option at fault.
pub fn check_registration(registration: &Registration<'_>) -> Result<(), String> {
    let Registration {
        grant_types,
        public,
        redirect_uris,
        skip_consent,
        pkce,
    } = *registration;
    if public && grant_types.contains(&GrantType::ClientCredentials) {
        // RFC 6749 §4.4: "The client credentials grant type MUST only be
        // used by confidential clients."
        return Err(
            "a public client cannot use client_credentials (RFC 6749 §4.4); pass --grant-types"
                .into(),
        );
    }
    if let Some(grant) = grant_types.iter().find(|grant| grant.redirects())
        && redirect_uris.is_empty()
    {
        return Err(format!("{grant} needs at least one --redirect-uri"));
    }
    for uri in redirect_uris {
        check_registrable(uri, public)
            .map_err(|reason| format!("--redirect-uri {uri:?} is refused: {reason}"))?;
    }
    if public && pkce == PkceRule::Optional {
        // RFC 9700 §2.1.1: public clients MUST use PKCE; nothing else binds
        // their code to them.
        return Err(
            "--pkce optional is for confidential clients only: a public client always uses PKCE"
                .into(),
        );
    }
    if public && skip_consent {
        // Anyone can present a public client's id, so skipping consent for
        // it would let any page obtain the user's approval unseen.
        return Err("--skip-consent is for first-party confidential clients only".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|uri| (*uri).to_owned()).collect()
    }

    fn check(
        grant_types: &[GrantType],
        public: bool,
        redirect_uris: &[&str],
        skip_consent: bool,
        pkce: PkceRule,
    ) -> Result<(), String> {
        let redirect_uris = uris(redirect_uris);
        check_registration(&Registration {
            grant_types,
            public,
            redirect_uris: &redirect_uris,
            skip_consent,
            pkce,
        })
    }

    const CODE: &[GrantType] = &[GrantType::AuthorizationCode, GrantType::RefreshToken];
    const WEB: &[&str] = &["https://app.example/cb"];

    #[test]
    fn browser_clients_that_follow_the_rules_are_registered() {
        use PkceRule::{Optional, Required};
        check(CODE, true, &["com.example.app:/cb"], false, Required).unwrap();
        check(CODE, false, WEB, true, Optional).unwrap();
        check(&[GrantType::Implicit], true, WEB, false, Required).unwrap();
        check(&[GrantType::ClientCredentials], false, &[], true, Optional).unwrap();
        check(&[GrantType::Password], true, &[], false, Required).unwrap();
    }

    #[test]
    fn each_rule_refuses_with_its_own_reason() {
        use PkceRule::{Optional, Required};
        for (refused, reason) in [
            (
                check(&[GrantType::ClientCredentials], true, &[], false, Required),
                "client_credentials",
            ),
            (
                check(CODE, false, &[], false, Required),
                "authorization_code needs",
            ),
            (
                check(&[GrantType::Implicit], true, &[], false, Required),
                "implicit needs",
            ),
            (
                check(CODE, false, &["com.example.app:/cb"], false, Required),
                "public",
            ),
            (
                check(
                    CODE,
                    false,
                    &["https://a.example/ok", "http://a.example/"],
                    false,
                    Required,
                ),
                "\"http://a.example/\" is refused: http",
            ),
            (check(CODE, true, WEB, false, Optional), "--pkce optional"),
            (check(CODE, true, WEB, true, Required), "--skip-consent"),
        ] {
            let refused = refused.unwrap_err();
            assert!(refused.contains(reason), "{refused}");
            assert_eq!(refused.lines().count(), 1);
        }
    }
}
