//! The first schema: clients, users, refresh tokens, opaque access tokens,
//! signing keys, revocations, and the change counter that keeps every replica's
//! memory in step with the database.
//!
//! Timestamps are seconds since the Unix epoch in BIGINT columns, and lists are
//! space-separated text, so SQLite and PostgreSQL store them the same way.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(string(Clients::ClientId).primary_key())
                    .col(string(Clients::Name))
                    .col(string_null(Clients::SecretHash))
                    .col(string(Clients::GrantTypes))
                    .col(text(Clients::Scopes))
                    .col(big_integer_null(Clients::AccessTokenTtl))
                    .col(boolean(Clients::Enabled))
                    .col(big_integer(Clients::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string(Users::Id).primary_key())
                    .col(string_uniq(Users::Username))
                    .col(string_null(Users::Email).unique_key())
                    .col(string_null(Users::Phone).unique_key())
                    .col(string(Users::PasswordHash))
                    .col(boolean(Users::Locked))
                    .col(boolean(Users::Disabled))
                    .col(boolean(Users::PasswordExpired))
                    .col(integer(Users::FailedLogins))
                    .col(big_integer(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(string(RefreshTokens::TokenHash).primary_key())
                    .col(string(RefreshTokens::FamilyId))
                    .col(string(RefreshTokens::ClientId))
                    .col(string_null(RefreshTokens::UserId))
                    .col(string_null(RefreshTokens::Username))
                    .col(text(RefreshTokens::Scope))
                    .col(text(RefreshTokens::GrantScope))
                    .col(big_integer(RefreshTokens::IssuedAt))
                    .col(big_integer(RefreshTokens::ExpiresAt))
                    .col(big_integer_null(RefreshTokens::UsedAt))
                    .col(boolean(RefreshTokens::Revoked))
                    .col(string(RefreshTokens::AccessJti))
                    .col(big_integer(RefreshTokens::AccessExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccessTokens::Table)
                    .col(string(AccessTokens::TokenHash).primary_key())
                    .col(string_uniq(AccessTokens::Jti))
                    .col(string(AccessTokens::ClientId))
                    .col(string_null(AccessTokens::UserId))
                    .col(string_null(AccessTokens::Username))
                    .col(text(AccessTokens::Scope))
                    .col(string(AccessTokens::Issuer))
                    .col(string(AccessTokens::Audience))
                    .col(big_integer(AccessTokens::IssuedAt))
                    .col(big_integer(AccessTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccessTokens::Table, AccessTokens::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccessTokens::Table, AccessTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string(SigningKeys::Kid).primary_key())
                    .col(string(SigningKeys::Alg))
                    .col(text(SigningKeys::PrivateKey))
                    .col(boolean(SigningKeys::Sealed))
                    .col(big_integer(SigningKeys::CreatedAt))
                    .col(big_integer(SigningKeys::ActivatesAt))
                    .col(big_integer_null(SigningKeys::DeactivatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .col(string(Revocations::Jti).primary_key())
                    .col(big_integer(Revocations::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revocations_expires_at")
                    .table(Revocations::Table)
                    .col(Revocations::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StateVersion::Table)
                    .col(integer(StateVersion::Id).primary_key())
                    .col(big_integer(StateVersion::Version))
                    .to_owned(),
            )
            .await?;
        let seed = Query::insert()
            .into_table(StateVersion::Table)
            .columns([StateVersion::Id, StateVersion::Version])
            .values([1.into(), 0i64.into()])
            .map_err(|err| DbErr::Custom(err.to_string()))?
            .to_owned();
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            StateVersion::Table.into_iden(),
            Revocations::Table.into_iden(),
            SigningKeys::Table.into_iden(),
            AccessTokens::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
            Clients::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    Name,
    SecretHash,
    GrantTypes,
    Scopes,
    AccessTokenTtl,
    Enabled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    Phone,
    PasswordHash,
    Locked,
    Disabled,
    PasswordExpired,
    FailedLogins,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenHash,
    FamilyId,
    ClientId,
    UserId,
    Username,
    Scope,
    GrantScope,
    IssuedAt,
    ExpiresAt,
    UsedAt,
    Revoked,
    AccessJti,
    AccessExpiresAt,
}

#[derive(DeriveIden)]
enum AccessTokens {
    Table,
    TokenHash,
    Jti,
    ClientId,
    UserId,
    Username,
    Scope,
    Issuer,
    Audience,
    IssuedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    PrivateKey,
    Sealed,
    CreatedAt,
    ActivatesAt,
    DeactivatedAt,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Jti,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum StateVersion {
    Table,
    Id,
    Version,
}
