//! The admin API's records ([`Records`]) over this machine's stores: the CDR store and
//! the recordings store. Used by the replicas a process runs (`tongdai up`,
//! `tongdai control-plane`), configured by `[records]`.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tongdai_control_plane::api::records::{CdrQuery, Records, RecordsError, RecordsFuture};

use crate::config::Config;
use crate::media::recording::RecordingStore;

use super::store::CdrStore;

/// CDRs and recordings as the API serves them; either may be switched off.
#[derive(Debug, Clone)]
pub struct NodeRecords {
    cdrs: Option<CdrStore>,
    recordings: Option<RecordingStore>,
}

impl NodeRecords {
    pub fn new(cdrs: Option<CdrStore>, recordings: Option<RecordingStore>) -> NodeRecords {
        NodeRecords { cdrs, recordings }
    }

    /// What `[records]` says to serve; `None` when both kinds are `off`.
    pub fn from_config(config: &Config) -> Option<Arc<dyn Records>> {
        let cdrs = config.records.cdr_dir(&config.cdr).map(CdrStore::local);
        let recordings = config
            .records
            .recordings_dir(&config.replica)
            .map(|dir| RecordingStore::Local { dir });
        if cdrs.is_none() && recordings.is_none() {
            return None;
        }
        Some(Arc::new(NodeRecords::new(cdrs, recordings)))
    }

    fn cdr_store(&self) -> Result<CdrStore, RecordsError> {
        self.cdrs.clone().ok_or(RecordsError::NotConfigured {
            what: "CDRs",
            key: "records.cdr_dir",
        })
    }

    fn recording_store(&self) -> Result<&RecordingStore, RecordsError> {
        self.recordings.as_ref().ok_or(RecordsError::NotConfigured {
            what: "recordings",
            key: "records.recordings_dir",
        })
    }
}

fn store_error(e: impl std::fmt::Display) -> RecordsError {
    RecordsError::Store(e.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, RecordsError> {
    serde_json::to_value(value).map_err(store_error)
}

impl Records for NodeRecords {
    fn cdrs(&self, tenant: String, query: CdrQuery) -> RecordsFuture<'_, Vec<Value>> {
        Box::pin(async move {
            let store = self.cdr_store()?;
            // The store reads files: off the async workers.
            let found = tokio::task::spawn_blocking(move || {
                store.list(&tenant, query.since_ms, query.until_ms, query.limit)
            })
            .await
            .map_err(store_error)?
            .map_err(store_error)?;
            found.iter().map(to_json).collect()
        })
    }

    fn recordings(&self, tenant: String) -> RecordsFuture<'_, Vec<Value>> {
        Box::pin(async move {
            let list = self
                .recording_store()?
                .list(&tenant)
                .await
                .map_err(store_error)?;
            list.iter().map(to_json).collect()
        })
    }

    fn recording(&self, tenant: String, id: String) -> RecordsFuture<'_, Option<Value>> {
        Box::pin(async move {
            let summary = self
                .recording_store()?
                .summary(&tenant, &id)
                .await
                .map_err(store_error)?;
            summary.as_ref().map(to_json).transpose()
        })
    }

    fn recording_audio(&self, tenant: String, id: String) -> RecordsFuture<'_, Option<Bytes>> {
        Box::pin(async move {
            self.recording_store()?
                .audio(&tenant, &id)
                .await
                .map_err(store_error)
        })
    }

    fn delete_recording(&self, tenant: String, id: String) -> RecordsFuture<'_, bool> {
        Box::pin(async move {
            self.recording_store()?
                .delete(&tenant, &id)
                .await
                .map_err(store_error)
        })
    }
}
