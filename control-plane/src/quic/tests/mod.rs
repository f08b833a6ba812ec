//! Tests of the QUIC layer.

mod certs;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A directory unique to one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "tongdai-quic-{}-{label}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A CA with certificates for `replica-1`, `replica-2`, `node-1` and `admin-1`.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new(label: &str) -> Pki {
        let dir = TempDir::new(label);
        init_ca(dir.path(), false).expect("init CA");
        for (name, role) in [
            ("replica-1", Role::Replica),
            ("replica-2", Role::Replica),
            ("node-1", Role::Node),
            ("admin-1", Role::Admin),
        ] {
            issue(dir.path(), name, role, &[], dir.path()).expect("issue");
        }
        Pki { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn identity(&self, name: &str) -> Identity {
        Identity::from_dir(self.path(), name).expect("load identity")
    }
}
