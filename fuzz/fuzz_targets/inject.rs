//! The injector on arbitrary bytes, split at an arbitrary point: never panics, and the output
//! is the input with at most one relive tag added.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relive::inject::{ClientTag, Injector};

fuzz_target!(|data: &[u8]| {
    let Some((&split, page)) = data.split_first() else {
        return;
    };
    let at = (split as usize * page.len()) / 255;
    let tag = ClientTag::new("fuzz").render(None);
    let mut injector = Injector::new(&ClientTag::new("fuzz"), None, Some("utf-8"));
    let mut out = injector.write(&page[..at]);
    out.extend(injector.write(&page[at..]));
    out.extend(injector.finish());
    let added = out.len() - page.len();
    assert!(added == 0 || added == tag.len(), "only the tag is ever added");
    if added == tag.len() {
        let position = out
            .windows(tag.len())
            .position(|w| w == tag.as_bytes())
            .expect("what was added is the tag");
        let mut without = out[..position].to_vec();
        without.extend_from_slice(&out[position + tag.len()..]);
        assert_eq!(without, page, "nothing but the tag changed");
    }
});
