//! Where a mirror lives: a local directory or a `file://` URL.

use std::path::Path;

use url::Url;

use crate::error::{MirrorError, Result};

/// The URL of the Delta table at `path`: a directory (relative to the
/// working directory, or absolute) or a `file://` URL. Object-store URLs
/// are refused with the reason: no cloud object store is compiled in.
pub(crate) fn table_url(path: &str) -> Result<Url> {
    let refuse = |reason: String| MirrorError::Location {
        path: path.to_string(),
        reason,
    };
    if path.trim().is_empty() {
        return Err(refuse("the location is empty".to_string()));
    }
    if let Some((scheme, _)) = path.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") {
            let url = Url::parse(path).map_err(|e| refuse(e.to_string()))?;
            let dir = url
                .to_file_path()
                .map_err(|()| refuse("not a local file URL".to_string()))?;
            return directory_url(path, &dir);
        }
        return Err(refuse(format!(
            "'{scheme}://' locations are not supported: mirrors are kept in local \
             directories or file:// URLs"
        )));
    }
    directory_url(path, Path::new(path))
}

fn directory_url(given: &str, dir: &Path) -> Result<Url> {
    let absolute = std::path::absolute(dir).map_err(|e| MirrorError::Location {
        path: given.to_string(),
        reason: e.to_string(),
    })?;
    Url::from_directory_path(&absolute).map_err(|()| MirrorError::Location {
        path: given.to_string(),
        reason: "not an absolute directory path".to_string(),
    })
}

/// The local directory of a mirror URL (every supported URL has one).
pub(crate) fn directory(url: &Url) -> Option<std::path::PathBuf> {
    url.to_file_path().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_and_file_urls_are_locations() -> Result<()> {
        let url = table_url("/tmp/mirrors/orders")?;
        assert_eq!(url.as_str(), "file:///tmp/mirrors/orders/");
        assert_eq!(table_url("file:///tmp/mirrors/orders")?, url);
        let relative = table_url("mirrors/orders")?;
        assert!(
            relative.as_str().ends_with("/mirrors/orders/"),
            "{relative}"
        );
        assert_eq!(
            directory(&url),
            Some(std::path::PathBuf::from("/tmp/mirrors/orders/"))
        );
        Ok(())
    }

    #[test]
    fn object_stores_and_empty_locations_are_refused_with_the_reason() {
        let err = table_url("s3://bucket/orders").err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("'s3://' locations are not supported")),
            "{err:?}"
        );
        assert!(table_url("  ").is_err());
    }
}
