//! route: the last steps of every change on its way to the tabs — what a dev server with its
//! own hot reloading updates by itself is left to it, the rest is said in relive's output and
//! published to the hub, and a published reload is remembered so that the pages it brings can
//! be told apart from a person's saves (see `loop_guard`).
//!
//! Must never: publish a change the dev server's hot reloading applies itself (the page would
//! reload over a hot update), or hold one back that it does not.

use std::sync::Arc;
use std::time::Instant;

use super::loop_guard::PageLoads;
use crate::hub::Hub;
use crate::hub::protocol::Event;
use crate::upstream::Upstream;

/// Where changes go.
pub struct Route {
    pub hub: Arc<Hub>,
    /// The dev server, when its hot reloading is to be left alone (`dev.defer_to_hmr`).
    pub defer_to: Option<Arc<Upstream>>,
    pub page_loads: Arc<PageLoads>,
    /// Pages and templates update in place (`morph`) rather than reload (`watch.morph`).
    pub morph: bool,
}

impl Route {
    /// Publishes a batch's events, past the dev server's own hot reloading.
    pub fn publish(&self, events: Vec<Event>) {
        let mut events = events;
        if let Some(name) = self.defer_to.as_ref().and_then(|u| u.hmr()) {
            let before = events.len();
            events = leave_to_hmr(events);
            if events.len() < before {
                tracing::debug!(
                    "left {} change(s) to {name}'s hot reloading",
                    before - events.len()
                );
            }
        }
        if self.morph {
            events = events.into_iter().map(morph_where_it_can).collect();
        }
        let reloads = events
            .iter()
            .any(|e| matches!(e, Event::Reload { .. } | Event::Morph { .. }));
        announce(&self.hub, events);
        if reloads {
            self.page_loads.reloaded(Instant::now());
        }
    }
}

/// Publishes the events of a batch, saying each in relive's output.
pub fn announce(hub: &Hub, events: Vec<Event>) {
    let tabs = match hub.subscribers() {
        1 => "1 tab".to_owned(),
        n => format!("{n} tabs"),
    };
    for event in events {
        match &event {
            Event::Css { paths } => tracing::info!("css     {} → {tabs}", paths.join(", ")),
            Event::Image { paths } => tracing::info!("image   {} → {tabs}", paths.join(", ")),
            Event::Reload { reason, .. } => tracing::info!("reload  {reason} → {tabs}"),
            Event::Morph { reason, .. } => tracing::info!("update  {reason} → {tabs}"),
            _ => {}
        }
        hub.publish(event);
    }
}

/// Files whose change a page cannot take in by being morphed: the code that runs in it (a
/// script's new version only runs after a reload) and data its scripts may have read.
const RUN_IN_THE_PAGE: &[&str] = &[
    "js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "vue", "svelte", "astro", "wasm", "json",
    "map",
];

/// A reload for files that are all markup, templates or server code becomes a `morph`: the
/// tabs fetch their page again and update it in place (or reload, and say why).
fn morph_where_it_can(event: Event) -> Event {
    match event {
        Event::Reload { reason, paths }
            if !paths.is_empty()
                && !paths.iter().any(|p| {
                    p.rsplit_once('.').is_some_and(|(_, ext)| {
                        RUN_IN_THE_PAGE.iter().any(|r| ext.eq_ignore_ascii_case(r))
                    })
                }) =>
        {
            Event::Morph { reason, paths }
        }
        other => other,
    }
}

/// Files a dev server with hot reloading updates by itself (modules and stylesheets).
const HMR_HANDLED: &[&str] = &[
    "js", "jsx", "mjs", "cjs", "ts", "tsx", "mts", "cts", "vue", "svelte", "astro", "mdx", "css",
    "scss", "sass", "less", "styl", "stylus", "pcss", "postcss",
];

fn hmr_handles(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| HMR_HANDLED.iter().any(|h| ext.eq_ignore_ascii_case(h)))
}

/// Drops what the dev server's own hot reloading already does: stylesheet swaps, and reloads
/// caused only by module or stylesheet files. Reloads for anything else (templates, server
/// code, HTML) stay.
pub fn leave_to_hmr(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .filter(|event| match event {
            Event::Css { .. } => false,
            Event::Reload { paths, .. } => {
                paths.is_empty() || !paths.iter().all(|p| hmr_handles(p))
            }
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_the_dev_server_hot_reloads_are_left_to_it() {
        let reload = |paths: &[&str]| Event::Reload {
            reason: "changed".into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        };
        let kept = leave_to_hmr(vec![
            Event::Css {
                paths: vec!["/src/app.css".into()],
            },
            reload(&["src/App.tsx", "src/util.ts"]),
        ]);
        assert!(kept.is_empty(), "{kept:?}");
        let template = reload(&["templates/base.html", "src/App.tsx"]);
        assert_eq!(leave_to_hmr(vec![template.clone()]), vec![template]);
        let image = Event::Image {
            paths: vec!["/logo.png".into()],
        };
        assert_eq!(leave_to_hmr(vec![image.clone()]), vec![image]);
    }

    #[test]
    fn every_trigger_leaves_hot_updates_to_the_dev_server() {
        let vite = Arc::new(Upstream::new(None, None, Vec::new()));
        vite.saw_path("/@vite/client");
        let route = Route {
            hub: Arc::new(Hub::new("s".into())),
            defer_to: Some(vite),
            page_loads: Arc::new(PageLoads::default()),
            morph: false,
        };
        route.publish(vec![Event::Css {
            paths: vec!["/src/app.css".into()],
        }]);
        assert_eq!(route.hub.last_id(), 0, "a stylesheet Vite swaps itself");
        route.publish(vec![Event::Reload {
            reason: "base.html changed".into(),
            paths: vec!["/templates/base.html".into()],
        }]);
        assert_eq!(route.hub.last_id(), 1, "a template Vite does not know");

        let plain = Route {
            defer_to: None,
            ..route
        };
        plain.publish(vec![Event::Css {
            paths: vec!["/src/app.css".into()],
        }]);
        assert_eq!(plain.hub.last_id(), 2, "no dev server to leave it to");
    }
}
