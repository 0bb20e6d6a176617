//! Reading the SNI and ALPN of a TLS ClientHello without terminating TLS (for TCP routers and
//! TLS passthrough). Bounded, allocation-light, and total: malformed input is an error.

/// What a ClientHello offers that TCP rules can match on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Hello {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
}

/// Largest ClientHello handshake message accepted (records may split it).
pub const MAX_HELLO: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a valid TLS ClientHello")]
pub struct NotHello;

/// Parses the ClientHello at the start of `buf` (TLS records). `Ok(None)`: more bytes needed.
pub fn parse(buf: &[u8]) -> Result<Option<Hello>, NotHello> {
    // Reassemble the handshake message from as many records as needed.
    let mut msg: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(header) = buf.get(pos..pos + 5) else {
            return Ok(None);
        };
        if header[0] != 0x16 || header[1] != 0x03 {
            return Err(NotHello);
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > 16 * 1024 + 256 {
            return Err(NotHello);
        }
        let Some(body) = buf.get(pos + 5..pos + 5 + len) else {
            return Ok(None);
        };
        msg.extend_from_slice(body);
        pos += 5 + len;
        if msg.len() >= 4 {
            if msg[0] != 1 {
                return Err(NotHello);
            }
            let need = 4
                + ((usize::from(msg[1]) << 16) | (usize::from(msg[2]) << 8) | usize::from(msg[3]));
            if need > MAX_HELLO {
                return Err(NotHello);
            }
            if msg.len() >= need {
                return hello(&msg[4..need]).map(Some).ok_or(NotHello);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.buf.get(..n)?, self.buf.get(n..)?);
        self.buf = b;
        Some(a)
    }

    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }

    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

fn hello(body: &[u8]) -> Option<Hello> {
    let mut r = Reader { buf: body };
    r.take(2)?; // legacy_version
    r.take(32)?; // random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    let mut out = Hello::default();
    if r.buf.is_empty() {
        return Some(out);
    }
    let mut exts = Reader { buf: r.vec16()? };
    while !exts.buf.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        match kind {
            0 => {
                let mut list = Reader {
                    buf: Reader { buf: data }.vec16()?,
                };
                while !list.buf.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    if name_type == 0 && out.sni.is_none() {
                        out.sni = Some(std::str::from_utf8(name).ok()?.to_ascii_lowercase());
                    }
                }
            }
            16 => {
                let mut list = Reader {
                    buf: Reader { buf: data }.vec16()?,
                };
                while !list.buf.is_empty() {
                    let proto = list.vec8()?;
                    out.alpn.push(String::from_utf8_lossy(proto).into_owned());
                }
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A real ClientHello from rustls, with SNI and ALPN.
    fn real_hello(sni: &str, alpn: &[&[u8]]) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from(sni.to_string()).expect("name");
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("conn");
        let mut out = Vec::new();
        conn.write_tls(&mut out).expect("hello");
        out
    }

    #[test]
    fn reads_sni_and_alpn_from_a_real_hello_at_every_split() {
        let bytes = real_hello("Redis.Example.COM", &[b"h2", b"http/1.1"]);
        let want = Hello {
            sni: Some("redis.example.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
        };
        assert_eq!(parse(&bytes), Ok(Some(want)));
        for cut in 0..bytes.len() {
            assert_eq!(parse(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_hello() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err(NotHello));
        assert_eq!(
            parse(&[0x16, 0x03, 0x01, 0x00, 0x05, 2, 0, 0, 1, 0]),
            Err(NotHello)
        );
        let mut bytes = real_hello("a.example", &[]);
        // Corrupt the extensions length: parsing must fail, not panic.
        let n = bytes.len();
        bytes[n - 20] = 0xff;
        let _ = parse(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x1234_5678_u64;
        for _ in 0..20_000 {
            let len = (seed % 300) as usize;
            let mut buf = vec![0x16, 0x03, 0x01, 0x01, 0x00, 0x01];
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                buf.push((seed >> 33) as u8);
            }
            let _ = parse(&buf);
        }
    }
}
