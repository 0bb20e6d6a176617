//! Criterion benches for ringway live in `benches/`; this library is empty.
