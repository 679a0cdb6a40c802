//! rewrite: one page on its way to the browser — its head made honest for a rewritten body
//! (no length, no byte ranges, a weak entity tag, chunked framing), its body decoded if the
//! upstream compressed it and passed through the injector chunk by chunk — and the record that
//! a page is being served, which the loop guard reads.
//!
//! Must never: hold a whole body; each chunk goes out as soon as it is rewritten.

use std::sync::Arc;

use bytes::Bytes;
use http::{Version, header};
use pingora::Result;
use pingora::http::ResponseHeader;

use super::answers::internal_error;

use crate::inject::decode::Decoder;
use crate::inject::policy::Page;
use crate::inject::{ClientTag, Injector};
use crate::triggers::PageLoads;

/// Makes a response head true for a rewritten body: no length, no byte ranges or modification
/// date, a weak entity tag, no content coding when relive decodes it, and chunked framing for an
/// HTTP/1.1 browser.
pub fn edit_head(response: &mut ResponseHeader, decoded: bool, client_http11: bool) -> Result<()> {
    if decoded {
        response.remove_header(&header::CONTENT_ENCODING);
    }
    response.remove_header(&header::CONTENT_LENGTH);
    response.remove_header(&header::LAST_MODIFIED);
    response.remove_header(&header::ACCEPT_RANGES);
    if let Some(etag) = response.headers.get(header::ETAG).cloned()
        && !etag.as_bytes().starts_with(b"W/")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        response.insert_header(header::ETAG, weak)?;
    }
    if client_http11 {
        // pingora copies the upstream's version (an HTTP/1.0 upstream would make this an
        // HTTP/1.0 response) and ends an unframed body by closing: frame it ourselves.
        response.set_version(Version::HTTP_11);
        response.insert_header(header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(())
}

/// Small pages answered from files, as rewritten: the same bytes (the very same allocation,
/// which an entry keeps alive, so its address cannot come to hold other bytes) with the same tag
/// come out the same, and most navigations ask again for a page with no event in between.
#[derive(Default)]
pub struct RewrittenPages(std::sync::Mutex<std::collections::VecDeque<Rewritten>>);

struct Rewritten {
    source: Bytes,
    last_id: u64,
    page: Page,
    out: Bytes,
}

/// How many rewritten pages are kept (the oldest goes first).
const REWRITTEN_PAGES: usize = 32;

impl RewrittenPages {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Rewritten>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `source` rewritten with the tag as of `last_id`, for `page`, if it was kept.
    pub fn get(&self, source: &Bytes, last_id: u64, page: &Page) -> Option<Bytes> {
        self.lock()
            .iter()
            .find(|kept| {
                kept.source.as_ptr() == source.as_ptr()
                    && kept.source.len() == source.len()
                    && kept.last_id == last_id
                    && kept.page == *page
            })
            .map(|kept| kept.out.clone())
    }

    pub fn keep(&self, source: Bytes, last_id: u64, page: Page, out: Bytes) {
        let mut kept = self.lock();
        if kept.len() == REWRITTEN_PAGES {
            kept.pop_front();
        }
        kept.push_back(Rewritten {
            source,
            last_id,
            page,
            out,
        });
    }
}

/// A page being rewritten as it streams.
pub struct PageRewrite {
    decoder: Option<Decoder>,
    injector: Injector,
}

impl PageRewrite {
    /// Edits the response head for the rewritten body and gets ready to rewrite it with `tag`.
    /// `client_http11`: the browser speaks HTTP/1.1, so the body is framed as chunks.
    pub fn start(
        page: Page,
        tag: &ClientTag,
        response: &mut ResponseHeader,
        client_http11: bool,
    ) -> Result<PageRewrite> {
        let decoder = match page.coding {
            Some(coding) => {
                Some(Decoder::new(coding).map_err(|e| internal_error("starting a decoder", e))?)
            }
            None => None,
        };
        edit_head(response, decoder.is_some(), client_http11)?;
        Ok(PageRewrite {
            decoder,
            injector: Injector::new(tag, page.nonce, page.charset.as_deref()),
        })
    }

    /// Rewrites one chunk of the body (and, at the end, whatever the decoder and injector still
    /// hold); returns the bytes to send now. Once the tag is in, an uncompressed chunk is handed
    /// on as it came, without a copy.
    pub fn write(&mut self, chunk: Option<Bytes>, end_of_stream: bool) -> Result<Bytes> {
        if self.decoder.is_none() && self.injector.passing_through() {
            return Ok(chunk.unwrap_or_default());
        }
        let mut out = Vec::new();
        if let Some(chunk) = chunk {
            match self.decoder.as_mut() {
                Some(decoder) => {
                    let decoded = decoder
                        .write(&chunk)
                        .map_err(|e| internal_error("decoding the upstream page", e))?;
                    out = self.injector.write(&decoded);
                }
                None => out = self.injector.write(&chunk),
            }
        }
        if end_of_stream {
            if let Some(decoder) = self.decoder.as_mut() {
                let decoded = decoder
                    .finish()
                    .map_err(|e| internal_error("decoding the upstream page", e))?;
                out.extend(self.injector.write(&decoded));
            }
            out.extend(self.injector.finish());
        }
        Ok(Bytes::from(out))
    }
}

/// A page being served, recorded in [`PageLoads`] until dropped (however the request ends).
pub struct PageServe {
    pub loads: Arc<PageLoads>,
    pub id: u64,
}

impl Drop for PageServe {
    fn drop(&mut self) {
        self.loads.end(self.id, std::time::Instant::now());
    }
}
