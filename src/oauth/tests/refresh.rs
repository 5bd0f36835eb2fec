//! The refresh grant: rotation, replay detection, scope narrowing and expiry
//! (RFC 6749 §6, RFC 9700 §4.14.2).

use super::*;
use crate::oauth::model::RefreshRecord;

async fn session(core: &TestCore) -> (ClientCredentials, String) {
    let client = confidential(core, "web");
    user(core, "ann");
    let issued = login(core, &client, "ann").await;
    (client, issued.refresh_token.unwrap())
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_keeps_the_grant() {
    let core = jwt_core();
    let (client, first) = session(&core).await;
    let second = token(&core, &client, refresh_grant(&first, None), T0 + 10)
        .await
        .unwrap();
    let next = second.refresh_token.unwrap();
    assert_ne!(next, first);
    assert_eq!(second.scope.to_string(), "read write");
    token(&core, &client, refresh_grant(&next, None), T0 + 20)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_replayed_refresh_token_revokes_every_descendant() {
    let core = jwt_core();
    let (client, first) = session(&core).await;
    let second = token(&core, &client, refresh_grant(&first, None), T0 + 1)
        .await
        .unwrap();
    let replay = token(&core, &client, refresh_grant(&first, None), T0 + 2).await;
    assert_eq!(
        described(replay),
        (
            "invalid_grant",
            "Refresh token has already been used".into()
        )
    );
    // The thief's or the owner's newer token dies with the family, and so does
    // the access token issued beside it.
    let rs = confidential(&core, "rs");
    let successor = second.refresh_token.unwrap();
    let refused = token(&core, &client, refresh_grant(&successor, None), T0 + 3).await;
    assert_eq!(described(refused).1, "Refresh token has been revoked");
    assert_eq!(
        introspect_at(&core, &rs, &second.access_token, T0 + 3).await,
        Introspection::Inactive
    );
}

#[tokio::test]
async fn a_narrower_scope_is_granted_and_a_wider_one_refused() {
    let core = jwt_core();
    let (client, first) = session(&core).await;
    let narrowed = token(&core, &client, refresh_grant(&first, Some("read")), T0 + 1)
        .await
        .unwrap();
    assert_eq!(narrowed.scope.to_string(), "read");
    // The grant stays whole: the next refresh may ask for write again.
    let next = narrowed.refresh_token.unwrap();
    let wider = token(
        &core,
        &client,
        refresh_grant(&next, Some("read admin")),
        T0 + 2,
    )
    .await;
    assert_eq!(
        described(wider),
        (
            "invalid_scope",
            "Scope exceeds the original grant: admin".into()
        )
    );
    let whole = token(
        &core,
        &client,
        refresh_grant(&next, Some("read write")),
        T0 + 3,
    )
    .await
    .unwrap();
    assert_eq!(whole.scope.to_string(), "read write");
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let core = jwt_core();
    let (client, first) = session(&core).await;
    let ttl = core.policy.refresh_token_ttl;
    let expired = token(&core, &client, refresh_grant(&first, None), T0 + ttl).await;
    assert_eq!(
        described(expired),
        ("invalid_grant", "Refresh token has expired".into())
    );
    // One second earlier it still worked: expiry is exact, not approximate.
    token(&core, &client, refresh_grant(&first, None), T0 + ttl - 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refresh_token_of_another_client_or_unknown_is_refused() {
    let core = jwt_core();
    let (_, first) = session(&core).await;
    let other = client_with(&core, "other", &GrantType::ALL, "read write", false);
    let foreign = token(&core, &other, refresh_grant(&first, None), T0 + 1).await;
    assert_eq!(
        described(foreign).1,
        "Refresh token was issued to another client"
    );
    let unknown = token(&core, &other, refresh_grant("no-such-token", None), T0 + 1).await;
    assert_eq!(described(unknown).1, "Refresh token is invalid");
}

#[tokio::test]
async fn a_locked_or_disabled_user_cannot_refresh_and_keeps_the_token() {
    let core = jwt_core();
    let (client, first) = session(&core).await;
    let ann = core.store.user("id-ann").unwrap();
    core.store.set_user_status(
        &ann.id,
        UserStatus {
            locked: true,
            ..UserStatus::default()
        },
    );
    let refused = token(&core, &client, refresh_grant(&first, None), T0 + 1).await;
    assert_eq!(described(refused).1, "User is locked");
    core.store.set_user_status(
        &ann.id,
        UserStatus {
            disabled: true,
            ..UserStatus::default()
        },
    );
    let refused = token(&core, &client, refresh_grant(&first, None), T0 + 1).await;
    assert_eq!(described(refused).1, "User is disabled");
    // The refusals did not use the token up.
    core.store.set_user_status(&ann.id, UserStatus::default());
    token(&core, &client, refresh_grant(&first, None), T0 + 2)
        .await
        .unwrap();
}

#[tokio::test]
async fn two_refreshes_with_one_token_have_exactly_one_winner() {
    let core = jwt_core();
    let (client, first) = session(&core).await;
    let (a, b) = tokio::join!(
        token(&core, &client, refresh_grant(&first, None), T0 + 1),
        token(&core, &client, refresh_grant(&first, None), T0 + 1),
    );
    assert_eq!(usize::from(a.is_ok()) + usize::from(b.is_ok()), 1);
}

#[tokio::test]
async fn refresh_with_a_scope_takes_the_checked_path_and_rotates_too() {
    let core = opaque_core();
    let (client, first) = session(&core).await;
    let issued = token(&core, &client, refresh_grant(&first, Some("read")), T0 + 1)
        .await
        .unwrap();
    let records = core.store.refresh_records();
    let used = records
        .iter()
        .find(|r| r.token_hash == hash_secret(&first))
        .unwrap();
    assert_eq!(used.used_at, Some(T0 + 1));
    let next = records
        .iter()
        .find(|r| r.token_hash == hash_secret(issued.refresh_token.as_deref().unwrap()))
        .unwrap();
    assert_eq!(next.family_id, used.family_id);
    assert_eq!(next.scope.to_string(), "read");
    assert_eq!(next.grant_scope.to_string(), "read write");
}

/// The reuse grace of the tests below, seconds.
const GRACE: i64 = 30;

/// A core whose `--refresh-token-reuse-grace` is [`GRACE`].
fn core_with_grace() -> TestCore {
    let mut core = jwt_core();
    core.policy.refresh_token_reuse_grace = GRACE;
    core
}

/// Every stored refresh token, in a stable order.
fn refresh_records(core: &TestCore) -> Vec<RefreshRecord> {
    let mut records = core.store.refresh_records();
    records.sort_by(|a, b| a.token_hash.cmp(&b.token_hash));
    records
}

fn already_used() -> (&'static str, String) {
    (
        "invalid_grant",
        "Refresh token has already been used".into(),
    )
}

#[tokio::test]
async fn within_the_reuse_grace_a_replay_is_refused_and_the_winner_keeps_its_tokens() {
    let core = core_with_grace();
    let (client, first) = session(&core).await;
    let won = token(&core, &client, refresh_grant(&first, None), T0 + 1)
        .await
        .unwrap();
    // Used at T0 + 1: the last second of the grace is T0 + GRACE.
    let replay = token(&core, &client, refresh_grant(&first, None), T0 + GRACE).await;
    assert_eq!(described(replay), already_used());
    let narrowed = refresh_grant(&first, Some("read"));
    assert_eq!(
        described(token(&core, &client, narrowed, T0 + GRACE).await),
        already_used()
    );
    let rs = confidential(&core, "rs");
    active(introspect_at(&core, &rs, &won.access_token, T0 + GRACE).await);
    let winner = won.refresh_token.unwrap();
    token(&core, &client, refresh_grant(&winner, None), T0 + GRACE)
        .await
        .unwrap();
}

#[tokio::test]
async fn after_the_reuse_grace_a_replay_revokes_the_family() {
    let core = core_with_grace();
    let (client, first) = session(&core).await;
    let won = token(&core, &client, refresh_grant(&first, None), T0 + 1)
        .await
        .unwrap();
    let replay = token(&core, &client, refresh_grant(&first, None), T0 + 1 + GRACE).await;
    assert_eq!(described(replay), already_used());
    let winner = won.refresh_token.unwrap();
    let refused = token(&core, &client, refresh_grant(&winner, None), T0 + 1 + GRACE).await;
    assert_eq!(described(refused).1, "Refresh token has been revoked");
    let rs = confidential(&core, "rs");
    assert_eq!(
        introspect_at(&core, &rs, &won.access_token, T0 + 1 + GRACE).await,
        Introspection::Inactive
    );
}

#[tokio::test]
async fn within_the_reuse_grace_another_client_is_refused_as_before_and_changes_nothing() {
    let core = core_with_grace();
    let (client, first) = session(&core).await;
    let won = token(&core, &client, refresh_grant(&first, None), T0 + 1)
        .await
        .unwrap();
    let other = client_with(&core, "other", &GrantType::ALL, "read write", false);
    let before = refresh_records(&core);
    let foreign = token(&core, &other, refresh_grant(&first, None), T0 + 2).await;
    assert_eq!(
        described(foreign).1,
        "Refresh token was issued to another client"
    );
    assert_eq!(refresh_records(&core), before);
    let winner = won.refresh_token.unwrap();
    token(&core, &client, refresh_grant(&winner, None), T0 + 2)
        .await
        .unwrap();
}

// The requests below lose a race: a rival uses or revokes the token between
// their read and their write. A scope keeps them on the checked path.

#[tokio::test]
async fn within_the_reuse_grace_a_request_that_loses_the_race_spares_the_family() {
    let core = core_with_grace();
    let client = confidential(&core, "web");
    user(&core, "ann");
    let issued = login(&core, &client, "ann").await;
    let first = issued.refresh_token.unwrap();
    core.store
        .before_next_rotation(|record| record.used_at = Some(T0 + 1));
    let lost = token(&core, &client, refresh_grant(&first, Some("read")), T0 + 1).await;
    assert_eq!(described(lost), already_used());
    assert!(refresh_records(&core).iter().all(|record| !record.revoked));
    let rs = confidential(&core, "rs");
    active(introspect_at(&core, &rs, &issued.access_token, T0 + 1).await);
}

#[tokio::test]
async fn without_a_grace_a_request_that_loses_the_race_revokes_the_family() {
    let core = jwt_core();
    let (client, first) = session(&core).await;
    core.store
        .before_next_rotation(|record| record.used_at = Some(T0 + 1));
    let lost = token(&core, &client, refresh_grant(&first, Some("read")), T0 + 1).await;
    assert_eq!(described(lost), already_used());
    assert!(refresh_records(&core).iter().all(|record| record.revoked));
}

#[tokio::test]
async fn a_request_that_loses_the_race_to_a_revocation_says_so() {
    for core in [jwt_core(), core_with_grace()] {
        let (client, first) = session(&core).await;
        core.store
            .before_next_rotation(|record| record.revoked = true);
        let lost = token(&core, &client, refresh_grant(&first, Some("read")), T0 + 1).await;
        assert_eq!(described(lost).1, "Refresh token has been revoked");
    }
}
