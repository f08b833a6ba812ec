//! The CRUD that every tenant-scoped entity shares, under `/v1/tenants/{tenant}/…`.
//!
//! An entity module describes its entity as a [`Scoped`] (list, delete) or an
//! [`Editable`] (also get, create, update) and keeps thin `#[utoipa::path]` handlers
//! that call the generic ones here. The steps run in one order for all: the URL's
//! tenant (404 for a tenant token's other tenants), the body's tenant and key against
//! the URL's, [`Scoped::allow`], the model's own checks, then the read or the write.

use axum::Json;
use axum::http::StatusCode;

use crate::cluster::Cluster;
use crate::model::{Command, Id, State};

use super::Api;
use super::auth::Principal;
use super::error::{ApiError, Ctx};
use super::extract::{Params, matching};
use super::tenants::missing;

/// What [`Scoped::allow`] is asked about.
#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    List,
    Create,
    Delete,
}

/// A tenant-scoped entity (`V` as read back, named by a `K` within its tenant): listed
/// at `/v1/tenants/{tenant}/<entities>`, deleted at `…/<entities>/{key}`.
pub(super) struct Scoped<V, K> {
    /// The URL parameter, and the body field, that hold the key.
    pub key: &'static str,
    /// Reads the key parameter from the URL (400 naming it if malformed).
    pub parse: fn(&Params, &str) -> Result<K, ApiError>,
    /// All of a tenant's.
    pub all: fn(&State, &Id) -> Vec<V>,
    /// The command deleting one, and what it is about.
    pub delete: fn(Id, K) -> (Ctx, Command),
    /// Refuses a principal an operation before anything is read or written.
    pub allow: fn(&Principal, Op) -> Result<(), ApiError>,
}

/// A [`Scoped`] entity that is also read one by one, created and replaced: stored as
/// `M`, written as `B`.
pub(super) struct Editable<M, B, V, K> {
    pub scoped: Scoped<V, K>,
    /// The tenant and the key a body names, where it names them.
    pub named: fn(&B) -> (Option<Id>, Option<K>),
    /// One of a tenant's, if it exists.
    pub find: for<'s> fn(&'s State, &Id, &K) -> Option<&'s M>,
    /// The 404 for a key that names none.
    pub unknown: fn(&Id, &K) -> ApiError,
    /// The model a POST body describes (and a PUT body, unless the handler says
    /// otherwise).
    pub model: fn(B, Id, K) -> Result<M, ApiError>,
    /// What a write of a model is about, for naming the field the cluster refuses.
    pub ctx: fn(&M) -> Ctx,
    pub create: fn(M) -> Command,
    pub update: fn(M) -> Command,
}

/// [`Scoped::allow`] for an entity that every principal of the tenant may manage.
pub(super) fn everyone(_: &Principal, _: Op) -> Result<(), ApiError> {
    Ok(())
}

/// A 201 for what a POST created.
pub(super) fn created<T>(body: Json<T>) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, body)
}

impl<V, K> Scoped<V, K> {
    /// The key the URL names.
    fn key_in(&self, p: &Params) -> Result<K, ApiError> {
        (self.parse)(p, self.key)
    }
}

impl<M, B, V, K: PartialEq + ToString> Editable<M, B, V, K> {
    /// For a PUT (also to handlers that build the model themselves): the tenant and
    /// the key from the URL, which the body may repeat.
    pub(super) fn ids(&self, who: &Principal, p: &Params, body: &B) -> Result<(Id, K), ApiError> {
        let (tenant, key) = (self.named)(body);
        let tenant = matching("tenant", p.tenant(who)?, tenant)?;
        let key = matching(self.scoped.key, self.scoped.key_in(p)?, key)?;
        Ok((tenant, key))
    }
}

impl<C: Cluster> Api<C> {
    /// `GET …/<entities>`.
    pub(super) async fn list<V, K>(
        &self,
        who: &Principal,
        p: &Params,
        e: &Scoped<V, K>,
    ) -> Result<Json<Vec<V>>, ApiError> {
        let tenant = p.tenant(who)?;
        (e.allow)(who, Op::List)?;
        self.read_tenant(&tenant, |s| (e.all)(s, &tenant))
            .await
            .map(Json)
    }

    /// `GET …/<entities>/{key}`.
    pub(super) async fn get<M, B, V: for<'m> From<&'m M>, K>(
        &self,
        who: &Principal,
        p: &Params,
        e: &Editable<M, B, V, K>,
    ) -> Result<Json<V>, ApiError> {
        let tenant = p.tenant(who)?;
        let key = e.scoped.key_in(p)?;
        self.read_tenant(&tenant, |s| (e.find)(s, &tenant, &key).map(V::from))
            .await?
            .map(Json)
            .ok_or_else(|| (e.unknown)(&tenant, &key))
    }

    /// `POST …/<entities>`.
    pub(super) async fn create<M: Clone, B, V: for<'m> From<&'m M>, K>(
        &self,
        who: &Principal,
        p: &Params,
        e: &Editable<M, B, V, K>,
        body: B,
    ) -> Result<(StatusCode, Json<V>), ApiError> {
        let (tenant, key) = (e.named)(&body);
        let tenant = matching("tenant", p.tenant(who)?, tenant)?;
        (e.scoped.allow)(who, Op::Create)?;
        let key = key.ok_or_else(|| missing(e.scoped.key))?;
        let model = (e.model)(body, tenant, key)?;
        self.save(who, &(e.ctx)(&model), e.create, model)
            .await
            .map(created)
    }

    /// `PUT …/<entities>/{key}`.
    pub(super) async fn update<M: Clone, B, V: for<'m> From<&'m M>, K: PartialEq + ToString>(
        &self,
        who: &Principal,
        p: &Params,
        e: &Editable<M, B, V, K>,
        body: B,
    ) -> Result<Json<V>, ApiError> {
        let (tenant, key) = e.ids(who, p, &body)?;
        let model = (e.model)(body, tenant, key)?;
        self.save(who, &(e.ctx)(&model), e.update, model).await
    }

    /// `DELETE …/<entities>/{key}`.
    pub(super) async fn delete<V, K>(
        &self,
        who: &Principal,
        p: &Params,
        e: &Scoped<V, K>,
    ) -> Result<StatusCode, ApiError> {
        let tenant = p.tenant(who)?;
        let key = e.key_in(p)?;
        (e.allow)(who, Op::Delete)?;
        let (ctx, command) = (e.delete)(tenant, key);
        self.apply(who, &ctx, command).await?;
        Ok(StatusCode::NO_CONTENT)
    }
}
