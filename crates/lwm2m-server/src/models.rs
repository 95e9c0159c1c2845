//! Loading user object definitions (OMA XML files) on top of the built-in ones.

use std::path::{Path, PathBuf};

use lwm2m::{ModelError, Registry};

/// Why object definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelLoadError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file is not a valid OMA object definition.
    #[error("{path}: {source}")]
    Model {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: ModelError,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelLoadError + '_ {
    move |source| ModelLoadError::Io { path: path.to_owned(), source }
}

/// The built-in registry plus every `*.xml` file in `paths` (files, or directories read one level deep).
/// A user definition replaces a built-in one with the same object id.
pub fn load_object_definitions(paths: &[PathBuf]) -> Result<Registry, ModelLoadError> {
    let mut reg = Registry::builtin();
    for p in paths {
        let mut files = Vec::new();
        if p.is_dir() {
            for e in std::fs::read_dir(p).map_err(io(p))? {
                let f = e.map_err(io(p))?.path();
                if f.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")) {
                    files.push(f);
                }
            }
            files.sort();
        } else {
            files.push(p.clone());
        }
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(io(&f))?;
            reg.load_xml(&text).map_err(|source| ModelLoadError::Model { path: f.clone(), source })?;
        }
    }
    Ok(reg)
}
