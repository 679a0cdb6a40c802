//! SECURITY.md §6, as properties of the injector: for any page built from HTML's tricky parts
//! (scripts, comments, templates, titles, attributes and text that contain `</head>` or
//! `</body>`, an existing relive tag where relive puts it), split into any chunks, with or
//! without a charset in the header, the output is the input with exactly one tag added at one
//! place, or the input unchanged when it already has relive's tag; the tag never lands inside a
//! script, comment, template, title or attribute; a page with a head gets it in the head; its
//! `<meta charset>` stays where it was.

use proptest::prelude::*;
use relive::inject::{ClientTag, Injector};

const TOKEN: &str = "prop";

fn tag() -> String {
    ClientTag::new(TOKEN).render(None)
}

/// Pieces of HTML that a careless injector gets wrong.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<p>text</p>".to_owned()),
        Just("<script>var s = '</body>';</script>".to_owned()),
        Just("<script>if (a < b) { x = \"<body>\"; }</script>".to_owned()),
        Just("<!-- </body> -->".to_owned()),
        Just("<template><div></div></body></template>".to_owned()),
        Just("<div title=\"</body>\">attr</div>".to_owned()),
        Just("<textarea></body></textarea>".to_owned()),
        Just("<style>body::after { content: '</body>' }</style>".to_owned()),
        Just("<img src=x alt='a > b'>".to_owned()),
        Just("&lt;/body&gt;".to_owned()),
        Just("<svg><title>x</title></svg>".to_owned()),
        Just("é ü ✓ 😀".to_owned()),
        // Free text (markup comes from the pieces above, well-formed).
        "[a-z &;>/=\"']{0,12}".prop_map(|s| s),
    ]
}

/// Pieces of a head that a careless injector gets wrong.
fn head_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<title>a </head> <script> b</title>".to_owned()),
        Just("<script>var s = '</head><body>';</script>".to_owned()),
        Just("<!-- </head> <body> -->".to_owned()),
        Just("<link rel=stylesheet href=\"a.css\">".to_owned()),
        Just("<meta name=\"x\" content=\"</head>\">".to_owned()),
        Just("<style>head::after { content: '</head>' }</style>".to_owned()),
        Just("<noscript><link rel=x href=y></noscript>".to_owned()),
        Just("<template><p></head></p></template>".to_owned()),
        Just("\n  ".to_owned()),
    ]
}

/// A page, whether it carries relive's tag already, and where its head ends (if it has one).
fn page() -> impl Strategy<Value = (String, bool, Option<usize>)> {
    (
        prop::collection::vec(piece(), 0..8),
        prop::collection::vec(head_piece(), 0..5),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(pieces, head, doctype, body, preinjected)| {
            const TAG: &str =
                "<script type=\"module\" src=\"/__relive/client.js\" data-relive></script>";
            let mut html = String::new();
            let mut head_end = None;
            if doctype {
                html.push_str("<!doctype html><html><head><meta charset=\"utf-8\">");
                if preinjected {
                    html.push_str(TAG);
                }
                html.push_str(&head.concat());
                head_end = Some(html.len());
                html.push_str("</head>");
            }
            if body {
                html.push_str("<body>");
            }
            if preinjected && !doctype {
                html.push_str(TAG);
            }
            html.push_str(&pieces.concat());
            if body {
                html.push_str("</body>");
            }
            if doctype {
                html.push_str("</html>\n");
            }
            (html, preinjected, head_end)
        })
}

/// Splits `bytes` at the given (sorted, deduplicated) offsets.
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for point in points {
        out.push(bytes[start..point].to_vec());
        start = point;
    }
    out.push(bytes[start..].to_vec());
    out
}

fn inject(input: &[Vec<u8>], header_charset: Option<&str>) -> String {
    let mut injector = Injector::new(&ClientTag::new(TOKEN), None, header_charset);
    let mut out = Vec::new();
    for chunk in input {
        out.extend(injector.write(chunk));
    }
    out.extend(injector.finish());
    String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
}

/// Whether `at` (a byte offset in `html`) is inside a script, style, textarea, title, comment,
/// template or noscript, or inside a tag (where an attribute could be).
fn inside_something(html: &str, at: usize) -> bool {
    let before = &html[..at];
    let open = |start: &str, end: &str| {
        before
            .rfind(start)
            .is_some_and(|s| before[s..].find(end).is_none())
    };
    open("<script", "</script>")
        || open("<style", "</style>")
        || open("<textarea", "</textarea>")
        || open("<title", "</title>")
        || open("<noscript", "</noscript>")
        || open("<!--", "-->")
        || open("<template", "</template>")
        || before
            .rfind('<')
            .is_some_and(|s| !before[s..].contains('>'))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn one_tag_at_one_place_or_none_when_already_there(
        (html, preinjected, head_end) in page(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        header_charset in prop::option::of(Just("utf-8")),
    ) {
        let output = inject(&chunks(html.as_bytes(), &cuts), header_charset);
        let tag = tag();
        if preinjected {
            prop_assert_eq!(output, html, "a page with relive's tag passes unchanged");
        } else {
            prop_assert_eq!(output.matches(&tag).count(), 1, "exactly one tag: {}", output);
            let at = output.find(&tag).unwrap();
            let without = format!("{}{}", &output[..at], &output[at + tag.len()..]);
            prop_assert_eq!(&without, &html, "nothing else changed");
            prop_assert!(!inside_something(&output, at), "tag inside markup: {}", output);
            if let Some(head_end) = head_end {
                prop_assert!(at <= head_end, "a page with a head gets the tag in it: {}", output);
                prop_assert_eq!(output.find("<meta charset"), html.find("<meta charset"));
            }
        }
    }
}
