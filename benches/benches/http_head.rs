//! HTTP/1.1 head hot path: parse and rewrite a typical browser request, parse and rewrite a
//! response, and scan a chunked body.
#![allow(clippy::unwrap_used)] // a bench that cannot parse its fixed input should stop

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway_dataplane::http::{
    parse_request, parse_response, write_request_head, write_response_head, ChunkedDecoder,
    ForwardContext, Limits, RequestHead, ResponseHead,
};

/// About 400 bytes, as a browser sends them.
const REQUEST: &[u8] = b"GET /api/v1/items?page=2&sort=name HTTP/1.1\r\n\
Host: app.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: application/json, text/plain, */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://app.example.com/items\r\n\
Connection: keep-alive\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Sec-Fetch-Dest: empty\r\n\
Sec-Fetch-Mode: cors\r\n\
\r\n";

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Length: 1234\r\n\
Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n\
Cache-Control: no-cache\r\n\
Keep-Alive: timeout=5\r\n\
Connection: keep-alive\r\n\
Vary: Accept-Encoding\r\n\
\r\n";

fn context() -> ForwardContext<'static> {
    ForwardContext {
        client_addr: SocketAddr::from(([203, 0, 113, 9], 51234)),
        trusted: false,
        tls: true,
        entry_port: 443,
        server_name: "edge-1",
        upstream_host: None,
    }
}

fn request(c: &mut Criterion) {
    let limits = Limits::default();
    let ctx = context();
    let mut head = RequestHead::new();
    let mut out = Vec::with_capacity(1024);
    let mut group = c.benchmark_group("http_head");
    group.throughput(Throughput::Bytes(REQUEST.len() as u64));
    group.bench_function("parse_request", |b| {
        b.iter(|| parse_request(black_box(REQUEST), &limits, &mut head).unwrap())
    });
    group.bench_function("parse_and_rewrite_request", |b| {
        b.iter(|| {
            parse_request(black_box(REQUEST), &limits, &mut head).unwrap();
            out.clear();
            write_request_head(&mut out, REQUEST, &head, &ctx);
            black_box(out.len())
        })
    });
    let mut rhead = ResponseHead::new();
    group.throughput(Throughput::Bytes(RESPONSE.len() as u64));
    group.bench_function("parse_and_rewrite_response", |b| {
        b.iter(|| {
            parse_response(black_box(RESPONSE), &limits, false, &mut rhead).unwrap();
            out.clear();
            write_response_head(&mut out, RESPONSE, &rhead, false);
            black_box(out.len())
        })
    });
    group.finish();
}

fn chunked(c: &mut Criterion) {
    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'x'; 0x400]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut group = c.benchmark_group("chunked");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("scan_64_chunks_of_1k", |b| {
        b.iter(|| {
            let mut dec = ChunkedDecoder::new();
            dec.advance(black_box(&body)).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, request, chunked);
criterion_main!(benches);
