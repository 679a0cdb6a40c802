//! ignore: which paths under a watched root are never worth a reload — the built-in list
//! (version control, dependencies, dev servers' caches, editor temp files), the person's
//! `--ignore` globs and the root's own `.gitignore`.
//!
//! Must never: follow a symlink out of the root while walking, or call a path outside the
//! root anything but ignored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Patterns (in `.gitignore` syntax) that are never worth a reload.
pub const BUILTIN_IGNORES: &[&str] = &[
    ".git/",
    ".hg/",
    ".svn/",
    "node_modules/",
    "target/",
    // Caches and build output that dev servers write while they run (Vite, Next.js, Nuxt,
    // SvelteKit, Parcel, Turborepo): never a person's edit, and each write would reload.
    ".vite/",
    ".next/",
    ".nuxt/",
    ".svelte-kit/",
    ".parcel-cache/",
    ".turbo/",
    ".DS_Store",
    // Editor swap, backup and atomic-save temp files (vim, emacs, JetBrains, VS Code, Kate).
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    ".#*",
    "\\#*#",
    "4913",
    "*.tmp",
    "*___jb_tmp___",
    "*___jb_old___",
    "*.crdownload",
    "*.part",
    ".*.kate-swp",
];

/// Ignore rules for one watched root.
pub struct IgnoreRules {
    root: PathBuf,
    rules: Gitignore,
}

impl IgnoreRules {
    /// Built-in patterns, the user's patterns, and the root's own `.gitignore`.
    pub fn new(root: &Path, user_patterns: &[String]) -> Result<IgnoreRules, ignore::Error> {
        let mut builder = GitignoreBuilder::new(root);
        for pattern in BUILTIN_IGNORES {
            builder.add_line(None, pattern)?;
        }
        for pattern in user_patterns {
            builder.add_line(None, pattern)?;
        }
        let gitignore = root.join(".gitignore");
        if gitignore.is_file()
            && let Some(error) = builder.add(&gitignore)
        {
            tracing::warn!("ignoring part of {}: {error}", gitignore.display());
        }
        Ok(IgnoreRules {
            root: root.to_path_buf(),
            rules: builder.build()?,
        })
    }

    /// Walks `dir` (below this root) without following links and without entering ignored
    /// directories; with `dirs_only`, only directories are visited.
    pub fn walk(self: &Arc<Self>, dir: &Path, dirs_only: bool) -> ignore::Walk {
        let rules = self.clone();
        ignore::WalkBuilder::new(dir)
            .standard_filters(false)
            .follow_links(false)
            .filter_entry(move |entry| {
                let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
                (is_dir || !dirs_only) && !rules.is_ignored(entry.path(), is_dir)
            })
            .build()
    }

    /// Whether changes at `path` are ignored. Paths outside the root are not this root's
    /// business and count as ignored.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if !path.starts_with(&self.root) {
            return true;
        }
        if path == self.root {
            return false;
        }
        self.rules
            .matched_path_or_any_parents(path, is_dir)
            .is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_rules_cover_builtins_user_globs_and_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "dist/\n*.log\n").unwrap();
        let rules = IgnoreRules::new(root, &["drafts/**".into()]).unwrap();
        for ignored in [
            ".git/index",
            "node_modules/x/index.js",
            "target/debug/relive",
            "src/.index.html.swp",
            "index.html~",
            ".#index.html",
            "#index.html#",
            "4913",
            "dist/app.js",
            "server.log",
            "drafts/post.html",
        ] {
            assert!(rules.is_ignored(&root.join(ignored), false), "{ignored}");
        }
        for kept in [
            "index.html",
            "css/site.css",
            ".well-known/security.txt",
            "4914",
        ] {
            assert!(!rules.is_ignored(&root.join(kept), false), "{kept}");
        }
        assert!(rules.is_ignored(Path::new("/elsewhere/index.html"), false));
    }
}
