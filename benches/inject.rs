//! Injector throughput on 10 KB, 1 MB and 50 MB pages, beside a plain copy of the same bytes
//! in the same chunks (the floor any streaming rewrite is measured against).
//!
//! `cargo bench --bench inject`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use relive::inject::{ClientTag, Injector};

/// The chunk size pingora hands the body filter with typical upstreams.
const CHUNK: usize = 16 * 1024;

fn page(size: usize) -> Vec<u8> {
    let mut page = b"<!doctype html><html><head><title>bench</title>\
        <link rel=stylesheet href=/site.css></head><body>\n"
        .to_vec();
    let block = b"<section class=\"card\"><h2>Heading</h2><p>Some <a href=\"/x\">linked</a> \
        text &amp; an <img src=\"/a.png\" alt=\"\"> image.</p><!-- note --></section>\n";
    while page.len() < size {
        page.extend_from_slice(block);
    }
    page.extend_from_slice(b"</body></html>\n");
    page
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("inject");
    for (label, size) in [
        ("10KB", 10 * 1024),
        ("1MB", 1024 * 1024),
        ("50MB", 50 * 1024 * 1024),
    ] {
        let input = page(size);
        group.throughput(Throughput::Bytes(input.len() as u64));
        if size > 1024 * 1024 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::new("lol_html", label), &input, |b, input| {
            b.iter(|| {
                let mut injector = Injector::new(&ClientTag::new("token"), None, None);
                let mut total = 0;
                for chunk in input.chunks(CHUNK) {
                    total += injector.write(black_box(chunk)).len();
                }
                total + injector.finish().len()
            })
        });
        group.bench_with_input(BenchmarkId::new("copy", label), &input, |b, input| {
            b.iter(|| {
                let mut total = 0;
                for chunk in input.chunks(CHUNK) {
                    total += black_box(chunk.to_vec()).len();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
