//! discover: where a dev server started by `relive -- CMD` listens. Pure functions over its
//! output lines, its arguments and the project's files; `devserver` applies them in order:
//! `--proxy` wins, then the first local URL the command prints, then a port in its arguments
//! (or in the package.json script it runs), then the framework's default port.
//!
//! Must never: take a URL on another machine for the dev server (only loopback and wildcard
//! addresses count), or read more than the project's own package.json.

use std::path::Path;

use crate::config::UpstreamUrl;
use crate::log::strip_ansi;

/// The first local `http://` (or `https://`) URL with a port in `line`, colours and all:
/// `localhost`, `127.0.0.1`, `[::1]`, or the wildcards `0.0.0.0` and `[::]` (reached through
/// loopback).
pub fn url_in_line(line: &str) -> Option<UpstreamUrl> {
    let line = strip_ansi(line);
    let mut rest = line.as_str();
    while let Some(start) = rest.find("http") {
        let candidate = &rest[start..];
        rest = &rest[start + 4..];
        let (https, after) = if let Some(after) = candidate.strip_prefix("http://") {
            (false, after)
        } else if let Some(after) = candidate.strip_prefix("https://") {
            (true, after)
        } else {
            continue;
        };
        let hosts = [
            ("localhost:", "localhost"),
            ("127.0.0.1:", "127.0.0.1"),
            ("[::1]:", "::1"),
            ("0.0.0.0:", "127.0.0.1"),
            ("[::]:", "localhost"),
        ];
        for (prefix, host) in hosts {
            if let Some(port) = after.strip_prefix(prefix) {
                let digits: String = port.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(port) = digits.parse::<u16>()
                    && port != 0
                {
                    return Some(UpstreamUrl {
                        tls: https,
                        host: host.to_owned(),
                        port,
                    });
                }
            }
        }
    }
    None
}

/// A port worked out before the command prints anything, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guess {
    pub port: u16,
    pub why: String,
}

/// Works out the port from the command's words and the project in `cwd`: an explicit port in
/// the arguments or the package.json script, else the framework's default port.
pub fn guess(words: &[String], cwd: &Path) -> Option<Guess> {
    let package = read_package_json(cwd);
    let script = package
        .as_ref()
        .and_then(|p| script_run_by(words, p).map(|(name, text)| (name, text.to_owned())));
    let script_words: Vec<String> = script
        .as_ref()
        .map(|(_, text)| text.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let lists = [words, script_words.as_slice()];
    let from = |index: usize, what: &str| match (&script, index) {
        (Some((name, _)), 1) => format!("{what} in package.json script `{name}`"),
        _ => format!("{what} in the command"),
    };
    for (index, list) in lists.iter().enumerate() {
        if let Some(port) = port_in_args(list) {
            return Some(Guess {
                port,
                why: from(index, "the port"),
            });
        }
    }
    for (index, list) in lists.iter().enumerate() {
        if let Some((word, framework, port)) = framework_in(list) {
            return Some(Guess {
                port,
                why: format!(
                    "{framework}'s default port, from {}",
                    from(index, &format!("`{word}`"))
                ),
            });
        }
    }
    if let Some(package) = &package
        && let Some((framework, port, dependency)) = framework_in_dependencies(package)
    {
        return Some(Guess {
            port,
            why: format!("{framework}'s default port, from `{dependency}` in package.json"),
        });
    }
    framework_in_files(cwd).map(|(framework, port, file)| Guess {
        port,
        why: format!("{framework}'s default port, from {file}"),
    })
}

fn read_package_json(cwd: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(cwd.join("package.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The package.json script a package-manager command runs: `npm run dev`, `npm start`,
/// `pnpm dev`, `yarn dev`, `bun run dev`.
fn script_run_by<'a>(
    words: &[String],
    package: &'a serde_json::Value,
) -> Option<(String, &'a str)> {
    let manager = words.first().map(|w| program_name(w))?;
    if !matches!(manager, "npm" | "pnpm" | "yarn" | "bun") {
        return None;
    }
    let mut rest = words[1..]
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with('-'));
    let name = match rest.next()? {
        "run" | "run-script" => rest.next()?,
        name => name,
    };
    let scripts = package.get("scripts")?;
    let text = scripts.get(name)?.as_str()?;
    Some((name.to_owned(), text))
}

/// `vite` for `node_modules/.bin/vite`.
fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// An explicit port: `--port 4000`, `--port=4000`, `-p 4000`, or a bare number / `addr:port`
/// argument (`python3 -m http.server 8765`, `manage.py runserver 0.0.0.0:8000`).
pub fn port_in_args(words: &[String]) -> Option<u16> {
    let parse = |s: &str| s.parse::<u16>().ok().filter(|p| *p != 0);
    let mut iter = words.iter().skip(1).peekable();
    let mut bare = None;
    while let Some(word) = iter.next() {
        if word == "--port" || word == "-p" || word == "--listen" {
            if let Some(port) = iter.peek().and_then(|next| parse(next)) {
                return Some(port);
            }
        } else if let Some(value) = word
            .strip_prefix("--port=")
            .or_else(|| word.strip_prefix("-p="))
            .or_else(|| word.strip_prefix("PORT="))
        {
            if let Some(port) = parse(value) {
                return Some(port);
            }
        } else if bare.is_none() && !word.starts_with('-') {
            let tail = word.rsplit(':').next().unwrap_or(word);
            bare = parse(tail).filter(|p| *p >= 1024);
        }
    }
    bare
}

/// Frameworks recognised by a word of the command, with their default ports.
const FRAMEWORKS: &[(&str, &str, u16)] = &[
    ("vite", "Vite", 5173),
    ("next", "Next.js", 3000),
    ("astro", "Astro", 4321),
    ("nuxt", "Nuxt", 3000),
    ("nuxi", "Nuxt", 3000),
    ("react-router", "React Router", 5173),
    ("remix", "Remix", 5173),
    ("svelte-kit", "SvelteKit", 5173),
    ("hugo", "Hugo", 1313),
    ("jekyll", "Jekyll", 4000),
    ("manage.py", "Django", 8000),
    ("rails", "Rails", 3000),
    ("flask", "Flask", 5000),
    ("eleventy", "Eleventy", 8080),
    ("parcel", "Parcel", 1234),
    ("ng", "Angular", 4200),
    ("webpack-dev-server", "webpack-dev-server", 8080),
];

/// The first word of `words` that names a framework: (the word, the framework, its port).
fn framework_in(words: &[String]) -> Option<(&'static str, &'static str, u16)> {
    words.iter().find_map(|w| {
        let program = program_name(w);
        FRAMEWORKS
            .iter()
            .find(|(word, _, _)| *word == program)
            .copied()
    })
}

/// Frameworks recognised by a dependency, most specific first.
const DEPENDENCIES: &[(&str, &str, u16)] = &[
    ("next", "Next.js", 3000),
    ("nuxt", "Nuxt", 3000),
    ("astro", "Astro", 4321),
    ("@sveltejs/kit", "SvelteKit", 5173),
    ("@react-router/dev", "React Router", 5173),
    ("@remix-run/dev", "Remix", 5173),
    ("vite", "Vite", 5173),
];

fn framework_in_dependencies(
    package: &serde_json::Value,
) -> Option<(&'static str, u16, &'static str)> {
    let has = |name: &str| {
        ["dependencies", "devDependencies"]
            .iter()
            .any(|section| package.get(section).and_then(|d| d.get(name)).is_some())
    };
    DEPENDENCIES
        .iter()
        .find(|(dependency, _, _)| has(dependency))
        .map(|(dependency, name, port)| (*name, *port, *dependency))
}

fn framework_in_files(cwd: &Path) -> Option<(&'static str, u16, &'static str)> {
    let exists = |file: &str| cwd.join(file).exists();
    let mentions = |file: &str, word: &str| {
        std::fs::read_to_string(cwd.join(file)).is_ok_and(|text| text.contains(word))
    };
    if exists("manage.py") {
        Some(("Django", 8000, "manage.py"))
    } else if exists("bin/rails") {
        Some(("Rails", 3000, "bin/rails"))
    } else if exists("hugo.toml") || exists("hugo.yaml") || exists("hugo.json") {
        Some(("Hugo", 1313, "a hugo config file"))
    } else if exists("_config.yml") && mentions("Gemfile", "jekyll") {
        Some(("Jekyll", 4000, "_config.yml and jekyll in the Gemfile"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn url(host: &str, port: u16) -> Option<UpstreamUrl> {
        Some(UpstreamUrl {
            tls: false,
            host: host.into(),
            port,
        })
    }

    #[test]
    fn urls_are_found_in_what_dev_servers_print() {
        // Vite colours the URL and bolds the port.
        let vite = "  \u{1b}[32m➜\u{1b}[39m  \u{1b}[1mLocal\u{1b}[22m:   \u{1b}[36mhttp://localhost:\u{1b}[1m5173\u{1b}[22m/\u{1b}[39m";
        assert_eq!(url_in_line(vite), url("localhost", 5173));
        assert_eq!(
            url_in_line("   - Local:        http://localhost:3000"),
            url("localhost", 3000)
        );
        assert_eq!(
            url_in_line("Serving HTTP on 0.0.0.0 port 8765 (http://0.0.0.0:8765/) ..."),
            url("127.0.0.1", 8765)
        );
        assert_eq!(
            url_in_line("Starting development server at http://127.0.0.1:8000/"),
            url("127.0.0.1", 8000)
        );
        assert_eq!(
            url_in_line("* Listening on http://[::1]:3000"),
            url("::1", 3000)
        );
        assert_eq!(
            url_in_line("see https://vite.dev/config and http://192.168.1.4:5173/"),
            None,
            "documentation links and LAN addresses are not the dev server"
        );
        assert!(url_in_line("Local: https://localhost:5173/").unwrap().tls);
        assert_eq!(url_in_line("http://localhost:/ nothing"), None);
    }

    #[test]
    fn ports_in_arguments() {
        assert_eq!(port_in_args(&words("vite --port 4000")), Some(4000));
        assert_eq!(port_in_args(&words("next dev -p 4001")), Some(4001));
        assert_eq!(port_in_args(&words("astro dev --port=4002")), Some(4002));
        assert_eq!(
            port_in_args(&words("python3 -m http.server 8765")),
            Some(8765)
        );
        assert_eq!(
            port_in_args(&words("python manage.py runserver 0.0.0.0:8001")),
            Some(8001)
        );
        assert_eq!(
            port_in_args(&words("sleep 5")),
            None,
            "small numbers are not ports"
        );
        assert_eq!(port_in_args(&words("vite")), None);
    }

    #[test]
    fn presets_come_from_the_command_the_script_and_the_project() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("package.json"),
            r#"{"scripts": {"dev": "vite", "start": "next start -p 4100", "serve": "node server.js"},
                "devDependencies": {"astro": "5"}}"#,
        )
        .unwrap();
        let g = guess(&words("npm run dev"), dir.path()).unwrap();
        assert_eq!(g.port, 5173);
        assert_eq!(
            g.why,
            "Vite's default port, from `vite` in package.json script `dev`"
        );
        let g = guess(&words("npm start"), dir.path()).unwrap();
        assert_eq!(
            (g.port, g.why.as_str()),
            (4100, "the port in package.json script `start`")
        );
        let g = guess(&words("pnpm serve"), dir.path()).unwrap();
        assert_eq!(g.port, 4321, "falls back to the dependencies: {}", g.why);
        let g = guess(&words("hugo server"), dir.path()).unwrap();
        assert_eq!(g.port, 1313);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(guess(&words("./serve.sh"), empty.path()), None);
        std::fs::write(empty.path().join("manage.py"), "").unwrap();
        assert_eq!(
            guess(&words("python manage.py runserver"), empty.path()).map(|g| g.port),
            Some(8000)
        );
    }
}
