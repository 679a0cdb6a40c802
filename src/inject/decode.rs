//! decode: undoes an upstream's `Content-Encoding` chunk by chunk, so a compressed page can be
//! rewritten even when the upstream ignored our request for an uncompressed one.
//!
//! Must never: hold a whole body, or let a small compressed body grow without bound (the total
//! decoded size is capped, which defeats decompression bombs).

use std::io::Write;

/// The most a single response may decode to. Far above any real page, far below harm.
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

/// A content coding relive can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

/// What a `Content-Encoding` header value means for injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCoding {
    /// No coding (or `identity`): the body is the page.
    Identity,
    /// One coding relive can decode.
    Decodable(Coding),
    /// Anything else, or several codings stacked: pass the body through untouched.
    Unsupported,
}

impl ContentCoding {
    /// Reads a `Content-Encoding` header value (`None` when the header is absent).
    pub fn parse(value: Option<&str>) -> ContentCoding {
        let Some(value) = value else {
            return ContentCoding::Identity;
        };
        let codings: Vec<String> = value
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty() && c != "identity")
            .collect();
        match codings.as_slice() {
            [] => ContentCoding::Identity,
            [one] => match one.as_str() {
                "gzip" | "x-gzip" => ContentCoding::Decodable(Coding::Gzip),
                "deflate" => ContentCoding::Decodable(Coding::Deflate),
                "br" => ContentCoding::Decodable(Coding::Brotli),
                "zstd" => ContentCoding::Decodable(Coding::Zstd),
                _ => ContentCoding::Unsupported,
            },
            _ => ContentCoding::Unsupported,
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the upstream's {coding:?} body is corrupt: {source}")]
    Corrupt {
        coding: Coding,
        source: std::io::Error,
    },
    #[error("the upstream's compressed body decodes to more than {0} bytes")]
    TooLarge(u64),
}

/// Everything decoded so far is appended here; `take` hands it on.
struct Output {
    buf: Vec<u8>,
    total: u64,
    limit: u64,
}

impl Output {
    fn new(limit: u64) -> Output {
        Output {
            buf: Vec::new(),
            total: 0,
            limit,
        }
    }
}

impl Write for Output {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.total += data.len() as u64;
        if self.total > self.limit {
            return Err(std::io::Error::other("decoded size limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Gzip(flate2::write::MultiGzDecoder<Output>),
    /// `deflate` is zlib-wrapped by the standard but sent raw by some servers; which one it is
    /// shows in the first byte.
    DeflatePending,
    Zlib(flate2::write::ZlibDecoder<Output>),
    RawDeflate(flate2::write::DeflateDecoder<Output>),
    Brotli(Box<brotli::DecompressorWriter<Output>>),
    Zstd(zstd::stream::write::Decoder<'static, Output>),
}

/// A push decoder: compressed chunks in, decoded chunks out.
pub struct Decoder {
    coding: Coding,
    limit: u64,
    inner: Inner,
}

impl Decoder {
    /// A decoder for `coding` that stops at [`MAX_DECODED_BYTES`].
    pub fn new(coding: Coding) -> std::io::Result<Decoder> {
        Decoder::with_limit(coding, MAX_DECODED_BYTES)
    }

    /// A decoder for `coding` that fails once the output passes `limit` bytes.
    pub fn with_limit(coding: Coding, limit: u64) -> std::io::Result<Decoder> {
        let out = || Output::new(limit);
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::MultiGzDecoder::new(out())),
            Coding::Deflate => Inner::DeflatePending,
            Coding::Brotli => {
                Inner::Brotli(Box::new(brotli::DecompressorWriter::new(out(), 8 * 1024)))
            }
            Coding::Zstd => Inner::Zstd(zstd::stream::write::Decoder::new(out())?),
        };
        Ok(Decoder {
            coding,
            limit,
            inner,
        })
    }

    /// Decodes the next compressed chunk; returns what it decoded to so far.
    pub fn write(&mut self, chunk: &[u8]) -> Result<Vec<u8>, DecodeError> {
        if chunk.is_empty() {
            return Ok(Vec::new());
        }
        if let Inner::DeflatePending = self.inner {
            // A zlib stream starts with a CMF byte whose low nibble is 8 (deflate) and whose
            // first two bytes form a multiple of 31; raw deflate does not in practice.
            let zlib = chunk[0] & 0x0f == 8
                && chunk
                    .get(1)
                    .is_none_or(|flg| (u16::from(chunk[0]) << 8 | u16::from(*flg)) % 31 == 0);
            self.inner = if zlib {
                Inner::Zlib(flate2::write::ZlibDecoder::new(Output::new(self.limit)))
            } else {
                Inner::RawDeflate(flate2::write::DeflateDecoder::new(Output::new(self.limit)))
            };
        }
        let result = match &mut self.inner {
            Inner::Gzip(d) => d.write_all(chunk),
            Inner::Zlib(d) => d.write_all(chunk),
            Inner::RawDeflate(d) => d.write_all(chunk),
            Inner::Brotli(d) => d.write_all(chunk),
            Inner::Zstd(d) => d.write_all(chunk),
            Inner::DeflatePending => unreachable!("resolved above"),
        };
        result.map_err(|e| self.error(e))?;
        Ok(self.take())
    }

    /// Ends the stream; returns the last decoded bytes.
    pub fn finish(&mut self) -> Result<Vec<u8>, DecodeError> {
        let result = match &mut self.inner {
            Inner::Gzip(d) => d.try_finish(),
            Inner::Zlib(d) => d.try_finish(),
            Inner::RawDeflate(d) => d.try_finish(),
            Inner::Brotli(d) => d.flush(),
            Inner::Zstd(d) => d.flush(),
            Inner::DeflatePending => Ok(()),
        };
        result.map_err(|e| self.error(e))?;
        Ok(self.take())
    }

    fn output(&mut self) -> Option<&mut Output> {
        match &mut self.inner {
            Inner::Gzip(d) => Some(d.get_mut()),
            Inner::Zlib(d) => Some(d.get_mut()),
            Inner::RawDeflate(d) => Some(d.get_mut()),
            Inner::Brotli(d) => Some(d.get_mut()),
            Inner::Zstd(d) => Some(d.get_mut()),
            Inner::DeflatePending => None,
        }
    }

    fn take(&mut self) -> Vec<u8> {
        self.output()
            .map(|out| std::mem::take(&mut out.buf))
            .unwrap_or_default()
    }

    fn error(&mut self, source: std::io::Error) -> DecodeError {
        match self.output() {
            Some(out) if out.total > out.limit => DecodeError::TooLarge(out.limit),
            _ => DecodeError::Corrupt {
                coding: self.coding,
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &[u8] = b"<html><body><h1>compressed page</h1></body></html>";

    fn compress(coding: Coding, data: &[u8]) -> Vec<u8> {
        match coding {
            Coding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Deflate => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Brotli => {
                let mut out = Vec::new();
                {
                    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                    w.write_all(data).unwrap();
                }
                out
            }
            Coding::Zstd => zstd::encode_all(data, 3).unwrap(),
        }
    }

    fn decode_in_pieces(coding: Coding, body: &[u8], piece: usize) -> Vec<u8> {
        let mut decoder = Decoder::new(coding).unwrap();
        let mut out = Vec::new();
        for chunk in body.chunks(piece) {
            out.extend(decoder.write(chunk).unwrap());
        }
        out.extend(decoder.finish().unwrap());
        out
    }

    #[test]
    fn every_coding_round_trips_in_any_chunking() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli, Coding::Zstd] {
            let body = compress(coding, PAGE);
            for piece in [1, 3, 7, body.len()] {
                assert_eq!(
                    decode_in_pieces(coding, &body, piece),
                    PAGE,
                    "{coding:?}/{piece}"
                );
            }
        }
    }

    #[test]
    fn raw_deflate_is_accepted_too() {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(PAGE).unwrap();
        let body = e.finish().unwrap();
        assert_eq!(decode_in_pieces(Coding::Deflate, &body, 5), PAGE);
    }

    #[test]
    fn corrupt_body_is_an_error() {
        let mut decoder = Decoder::new(Coding::Gzip).unwrap();
        let result = decoder
            .write(b"\x1f\x8b\x08\x00garbage-that-is-not-deflate-data")
            .and_then(|_| decoder.finish());
        assert!(
            matches!(result, Err(DecodeError::Corrupt { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn decompression_bomb_is_stopped() {
        // 64 MiB of zeros gzip to about 64 KiB; a 1 MiB cap must trip long before the end.
        let zeros = vec![0u8; 64 * 1024 * 1024];
        let bomb = compress(Coding::Gzip, &zeros);
        assert!(bomb.len() < 1024 * 1024);
        let mut decoder = Decoder::with_limit(Coding::Gzip, 1024 * 1024).unwrap();
        let mut failed = false;
        for chunk in bomb.chunks(4 * 1024) {
            match decoder.write(chunk) {
                Ok(_) => {}
                Err(DecodeError::TooLarge(_)) => {
                    failed = true;
                    break;
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert!(failed, "the cap must trip");
    }

    #[test]
    fn content_encoding_header_is_classified() {
        use ContentCoding::*;
        assert_eq!(ContentCoding::parse(None), Identity);
        assert_eq!(ContentCoding::parse(Some("identity")), Identity);
        assert_eq!(ContentCoding::parse(Some("GZIP")), Decodable(Coding::Gzip));
        assert_eq!(
            ContentCoding::parse(Some("x-gzip")),
            Decodable(Coding::Gzip)
        );
        assert_eq!(ContentCoding::parse(Some("br")), Decodable(Coding::Brotli));
        assert_eq!(ContentCoding::parse(Some("zstd")), Decodable(Coding::Zstd));
        assert_eq!(
            ContentCoding::parse(Some("deflate")),
            Decodable(Coding::Deflate)
        );
        assert_eq!(ContentCoding::parse(Some("compress")), Unsupported);
        assert_eq!(ContentCoding::parse(Some("gzip, br")), Unsupported);
    }
}
