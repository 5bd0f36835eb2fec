//! The login decision (`user_auth.rs`): decoy, lockout, state order.

use super::*;

#[tokio::test]
async fn wrong_passwords_lock_the_user_after_the_configured_count() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let ann = user(&core, "ann");
    for _ in 0..core.policy.lock_after_failed_logins {
        let refused = token(&core, &client, password_grant("ann", "wrong"), T0).await;
        assert_eq!(described(refused).1, "Bad credentials");
    }
    assert!(core.store.user(&ann.id).unwrap().status.locked);
    // Now even the right password only learns that the account is locked.
    let refused = token(&core, &client, password_grant("ann", PASSWORD), T0).await;
    assert_eq!(
        described(refused),
        ("invalid_grant", "User is locked".into())
    );
}

#[tokio::test]
async fn a_success_clears_the_count_of_failures() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let ann = user(&core, "ann");
    let _ = token(&core, &client, password_grant("ann", "wrong"), T0).await;
    assert_eq!(core.store.user(&ann.id).unwrap().failed_logins, 1);
    login(&core, &client, "ann").await;
    assert_eq!(core.store.user(&ann.id).unwrap().failed_logins, 0);
}

#[tokio::test]
async fn the_account_state_is_told_only_to_who_knows_the_password() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let states = [
        (
            UserStatus {
                disabled: true,
                locked: true,
                password_expired: true,
            },
            "User is disabled",
        ),
        (
            UserStatus {
                locked: true,
                password_expired: true,
                ..UserStatus::default()
            },
            "User is locked",
        ),
        (
            UserStatus {
                password_expired: true,
                ..UserStatus::default()
            },
            "Password has expired",
        ),
    ];
    for (status, description) in states {
        let someone = user(&core, "bob");
        core.store.set_user_status(&someone.id, status);
        let right = token(&core, &client, password_grant("bob", PASSWORD), T0).await;
        assert_eq!(described(right), ("invalid_grant", description.into()));
        let wrong = token(&core, &client, password_grant("bob", "wrong"), T0).await;
        assert_eq!(described(wrong).1, "Bad credentials");
    }
}

#[tokio::test]
async fn an_unknown_login_counts_against_no_one() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let ann = user(&core, "ann");
    let refused = token(&core, &client, password_grant("nobody", PASSWORD), T0).await;
    assert_eq!(described(refused).1, "Bad credentials");
    assert_eq!(core.store.user(&ann.id).unwrap().failed_logins, 0);
}

#[tokio::test]
async fn a_scope_the_client_may_not_have_costs_no_password_check() {
    let core = jwt_core();
    let client = confidential(&core, "web");
    let ann = user(&core, "ann");
    let grant = GrantRequest::Password {
        username: "ann".into(),
        password: Secret::new("wrong"),
        scope: Some("admin".into()),
    };
    let refused = token(&core, &client, grant, T0).await;
    assert_eq!(described(refused).0, "invalid_scope");
    assert_eq!(core.store.user(&ann.id).unwrap().failed_logins, 0);
}

#[tokio::test]
async fn an_address_that_keeps_failing_is_throttled_before_any_password_check() {
    let mut core = jwt_core();
    core.login_throttle = crate::oauth::login_throttle::LoginThrottle::new(
        crate::oauth::login_throttle::ThrottlePolicy::default(),
    );
    let client = confidential(&core, "web");
    let ann = user(&core, "ann");
    let origin = crate::oauth::login_throttle::LoginOrigin {
        address: "203.0.113.7".parse().unwrap(),
        at: crate::clock::instant(),
    };
    let attempt = |password: &str| TokenRequest {
        client: client.clone(),
        grant: Ok(password_grant("ann", password)),
        origin: Some(origin),
    };
    let first = issue_token(&core, attempt("wrong"), T0).await.unwrap_err();
    assert_eq!(first.description(), "Bad credentials");
    // The backoff after the first failure refuses the next attempt at once,
    // even with the right password, and counts nothing against the account.
    let second = issue_token(&core, attempt(PASSWORD), T0).await.unwrap_err();
    assert!(matches!(second, OAuthError::Throttled { .. }), "{second:?}");
    assert_eq!(second.code(), "temporarily_unavailable");
    assert_eq!(core.store.user(&ann.id).unwrap().failed_logins, 1);
}
