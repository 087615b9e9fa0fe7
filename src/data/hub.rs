//! Files hosted on the Hugging Face hub (pretrained weights, datasets), read from the local
//! hub cache first.
//!
//! The cache uses the hub's own layout (`<cache>/models--org--name/refs/<revision>` holding a
//! commit hash, and `snapshots/<commit>/<file>`), so files downloaded by Python's
//! `huggingface_hub` are found too. The cache folder is, in order: the one you pass,
//! `$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`. With `HF_HUB_OFFLINE=1` (or
//! `offline: true`) nothing is downloaded and a missing file is an error naming the folder
//! searched. Downloading needs the crate feature `download` (hf-hub's blocking client with
//! TLS), off by default so that notebooks compile no TLS stack.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A file in a hub repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubFile {
    /// `org/name`.
    pub repo: String,
    /// Whether the repository is a model or a dataset.
    pub kind: RepoKind,
    /// Branch, tag or commit hash.
    pub revision: String,
    /// Path of the file in the repository.
    pub filename: String,
}

/// The kind of hub repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoKind {
    /// A model repository.
    Model,
    /// A dataset repository.
    Dataset,
}

impl HubFile {
    /// A file of a model repository at `main`.
    pub fn model(repo: &str, filename: &str) -> Self {
        HubFile { repo: repo.into(), kind: RepoKind::Model, revision: "main".into(), filename: filename.into() }
    }

    /// A file of a dataset repository at `main`.
    pub fn dataset(repo: &str, filename: &str) -> Self {
        HubFile { repo: repo.into(), kind: RepoKind::Dataset, revision: "main".into(), filename: filename.into() }
    }

    /// The same file at another revision.
    pub fn at(mut self, revision: &str) -> Self {
        self.revision = revision.into();
        self
    }

    fn repo(&self) -> hf_hub::Repo {
        let kind = match self.kind {
            RepoKind::Model => hf_hub::RepoType::Model,
            RepoKind::Dataset => hf_hub::RepoType::Dataset,
        };
        hf_hub::Repo::with_revision(self.repo.clone(), kind, self.revision.clone())
    }
}

impl std::fmt::Display for HubFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}", self.repo, self.revision, self.filename)
    }
}

/// Where to look and whether the network may be used.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HubOptions {
    /// The cache folder; `None` resolves it from the environment.
    pub cache_dir: Option<PathBuf>,
    /// Never download (also forced by `HF_HUB_OFFLINE=1`).
    pub offline: bool,
}

/// The hub cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return Some(PathBuf::from(p).join("hub"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface/hub"))
}

/// Whether `HF_HUB_OFFLINE` asks for offline mode (`1`, `true`, `yes`, `on`).
pub fn offline_from_env() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The file in the local cache, if it is there.
pub fn cached(file: &HubFile, cache_dir: &Path) -> Option<PathBuf> {
    let cache = hf_hub::Cache::new(cache_dir.to_path_buf());
    if let Some(p) = cache.repo(file.repo()).get(&file.filename) {
        return Some(p);
    }
    // A revision given as a commit hash has a snapshot but maybe no ref.
    let snapshot =
        cache_dir.join(file.repo().folder_name()).join("snapshots").join(&file.revision).join(&file.filename);
    snapshot.is_file().then_some(snapshot)
}

/// The local path of a hub file: from the cache, else downloaded into it (feature
/// `download`, not offline). Errors name the file and the cache folder.
///
/// ```
/// use rwt::data::hub::{self, HubFile, HubOptions};
/// let dir = std::env::temp_dir().join("rwt-doc-hub");
/// let opts = HubOptions { cache_dir: Some(dir.clone()), offline: true };
/// let err = hub::fetch(&HubFile::model("org/missing", "w.safetensors"), &opts).unwrap_err();
/// assert!(err.to_string().contains("org/missing@main:w.safetensors"));
/// ```
pub fn fetch(file: &HubFile, opts: &HubOptions) -> Result<PathBuf> {
    let dir = opts.cache_dir.clone().or_else(default_cache_dir).ok_or_else(|| {
        Error::invalid(
            "hub cache",
            "none",
            "no cache folder: set HF_HUB_CACHE or HF_HOME, or pass HubOptions::cache_dir",
        )
    })?;
    if let Some(p) = cached(file, &dir) {
        return Ok(p);
    }
    let offline = opts.offline || offline_from_env();
    if offline {
        return Err(Error::invalid(
            "hub file",
            file,
            format!(
                "is not in the cache {} and offline mode is on (HF_HUB_OFFLINE or HubOptions::offline)",
                dir.display()
            ),
        ));
    }
    download(file, &dir)
}

#[cfg(feature = "download")]
fn download(file: &HubFile, dir: &Path) -> Result<PathBuf> {
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_cache_dir(dir.to_path_buf())
        .with_progress(false)
        .build()
        .map_err(|e| Error::invalid("hub client", file, e.to_string()))?;
    api.repo(file.repo())
        .get(&file.filename)
        .map_err(|e| Error::invalid("hub file", file, format!("download into {} failed: {e}", dir.display())))
}

#[cfg(not(feature = "download"))]
fn download(file: &HubFile, dir: &Path) -> Result<PathBuf> {
    Err(Error::invalid(
        "hub file",
        file,
        format!("is not in the cache {} and rwt was built without the `download` feature", dir.display()),
    ))
}

/// Puts a local file into a hub cache under `file`'s repository and revision (as the hub
/// client would after a download), with `commit` as the snapshot id. Lets you use weights you
/// copied by hand through [`fetch`], and lets tests build a cache.
pub fn insert(file: &HubFile, commit: &str, source: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let repo_dir = cache_dir.join(file.repo().folder_name());
    let target = repo_dir.join("snapshots").join(commit).join(&file.filename);
    let bytes = std::fs::read(source).map_err(|e| Error::Io { path: source.to_path_buf(), source: e })?;
    crate::io::write_atomic(&target, &bytes)?;
    let cache = hf_hub::Cache::new(cache_dir.to_path_buf());
    cache.repo(file.repo()).create_ref(commit).map_err(|e| Error::Io { path: repo_dir.join("refs"), source: e })?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_cache_round_trip() {
        let dir = std::env::temp_dir().join(format!("rwt-hub-{}", std::process::id()));
        let src = dir.join("src.bin");
        crate::io::write_atomic(&src, b"weights").unwrap();
        let cache = dir.join("cache");
        let file = HubFile::model("rwt/enet-camvid", "model.safetensors");
        let opts = HubOptions { cache_dir: Some(cache.clone()), offline: true };
        assert!(fetch(&file, &opts).unwrap_err().to_string().contains("offline mode"));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        insert(&file, commit, &src, &cache).unwrap();
        let got = fetch(&file, &opts).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), b"weights");
        assert!(got.starts_with(cache.join("models--rwt--enet-camvid/snapshots").join(commit)));
        // By commit hash too, and datasets live apart from models.
        assert_eq!(fetch(&file.clone().at(commit), &opts).unwrap(), got);
        assert!(fetch(&HubFile::dataset("rwt/enet-camvid", "model.safetensors"), &opts).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
