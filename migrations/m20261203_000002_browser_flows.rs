//! Browser flows (SPEC §7): what a client registers for them, and the state
//! the authorization endpoint keeps.
//!
//! - `clients` gains `redirect_uris` (space-separated: a valid URI has no
//!   space), `skip_consent` and `pkce` (`required` or `optional`). Existing
//!   clients get none, no and `required`.
//! - `authorization_codes`: one row per `oac_` code, by its hash, bound to
//!   client, user, redirect URI, PKCE challenge and scope. `used_at` is set by
//!   the one conditional update that redeems it; `family_id` and `access_jti`
//!   name what that redemption issued, so that a replay can revoke it. A used
//!   code stays until it expires, so that a replay is still recognised.
//!   On SQLite, the update that redeems a code also names the refresh token
//!   it issues (`refresh_hash`, `refresh_expires_at`), and a trigger stores
//!   that token from the code's row in the same statement: a redemption is one
//!   statement, as a refresh is (`m20261122_000001`). PostgreSQL inserts it in
//!   the redemption's transaction and gets no trigger.
//! - `sessions`: browser logins, by the hash of the cookie's value.
//! - `consents`: the scopes a user approved for a client.
//!
//! Each row goes with its client and its user (`ON DELETE CASCADE`), and each
//! table has an index on `expires_at` for the purge (SPEC §10) or on the
//! column management commands look rows up by.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const CREATE_TRIGGER: &str = "\
CREATE TRIGGER authorization_codes_issue_refresh AFTER UPDATE OF used_at ON authorization_codes
WHEN OLD.used_at IS NULL AND NEW.used_at IS NOT NULL AND NEW.refresh_hash IS NOT NULL
BEGIN
    INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, username, scope,
        grant_scope, issued_at, expires_at, used_at, revoked, access_jti, access_expires_at,
        parent_hash)
    VALUES (NEW.refresh_hash, NEW.family_id, NEW.client_id, NEW.user_id, NEW.username,
        NEW.scope, NEW.scope, NEW.used_at, NEW.refresh_expires_at, NULL, FALSE, NEW.access_jti,
        NEW.access_expires_at, NULL);
END";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            text(Clients::RedirectUris).default("").to_owned(),
            boolean(Clients::SkipConsent).default(false).to_owned(),
            string(Clients::Pkce).default("required").to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuthorizationCodes::Table)
                    .col(string(AuthorizationCodes::CodeHash).primary_key())
                    .col(string(AuthorizationCodes::ClientId))
                    .col(string(AuthorizationCodes::UserId))
                    .col(string(AuthorizationCodes::Username))
                    .col(text_null(AuthorizationCodes::RedirectUri))
                    .col(text(AuthorizationCodes::Scope))
                    .col(string_null(AuthorizationCodes::CodeChallenge))
                    .col(big_integer(AuthorizationCodes::CreatedAt))
                    .col(big_integer(AuthorizationCodes::ExpiresAt))
                    .col(big_integer_null(AuthorizationCodes::UsedAt))
                    .col(string_null(AuthorizationCodes::FamilyId))
                    .col(string_null(AuthorizationCodes::AccessJti))
                    .col(big_integer_null(AuthorizationCodes::AccessExpiresAt))
                    .col(string_null(AuthorizationCodes::RefreshHash))
                    .col(big_integer_null(AuthorizationCodes::RefreshExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthorizationCodes::Table, AuthorizationCodes::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthorizationCodes::Table, AuthorizationCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(string(Sessions::SessionHash).primary_key())
                    .col(string(Sessions::UserId))
                    .col(big_integer(Sessions::CreatedAt))
                    .col(big_integer(Sessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(string(Consents::UserId))
                    .col(string(Consents::ClientId))
                    .col(text(Consents::Scope))
                    .col(big_integer(Consents::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Consents::UserId)
                            .col(Consents::ClientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Consents::Table, Consents::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table, column) in [
            (
                "idx_authorization_codes_expires_at",
                AuthorizationCodes::Table.into_iden(),
                AuthorizationCodes::ExpiresAt.into_iden(),
            ),
            (
                "idx_sessions_user_id",
                Sessions::Table.into_iden(),
                Sessions::UserId.into_iden(),
            ),
            (
                "idx_sessions_expires_at",
                Sessions::Table.into_iden(),
                Sessions::ExpiresAt.into_iden(),
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        if manager.get_database_backend() == sea_orm::DbBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared(CREATE_TRIGGER)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared("DROP TRIGGER IF EXISTS authorization_codes_issue_refresh")
                .await?;
        }
        for table in [
            Consents::Table.into_iden(),
            Sessions::Table.into_iden(),
            AuthorizationCodes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [Clients::RedirectUris, Clients::SkipConsent, Clients::Pkce] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    RedirectUris,
    SkipConsent,
    Pkce,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    ClientId,
    UserId,
    Username,
    RedirectUri,
    Scope,
    CodeChallenge,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    FamilyId,
    AccessJti,
    AccessExpiresAt,
    RefreshHash,
    RefreshExpiresAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    SessionHash,
    UserId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    UserId,
    ClientId,
    Scope,
    UpdatedAt,
}
