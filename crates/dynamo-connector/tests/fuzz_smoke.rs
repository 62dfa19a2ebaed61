//! The fuzz targets' smoke run, for CI (the real fuzzing is `cargo fuzz run`,
//! see `docs/reliability.md`): every file of `fuzz/corpus/<target>/` goes through the
//! target's check, then a few thousand seeded mutations of them do.

use std::path::PathBuf;

use dynamo_connector::fuzzing::{check_decode, check_render, check_request};

const MUTATIONS: usize = 3_000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).expect("read corpus file"))
        .collect();
    assert!(!inputs.is_empty(), "{} is empty", dir.display());
    inputs
}

/// A mutation of `input`: byte flips, inserted JSON-ish tokens, cut or
/// repeated ranges, as a fuzzer would make.
fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    const TOKENS: &[&[u8]] = &[
        b"\"",
        b"{",
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b"\"N\"",
        b"\"S\"",
        b"\"M\"",
        b"\"L\"",
        b"null",
        b"true",
        b"1e999",
        b"-0",
        b"\\u0000",
        b"\xff",
        b"\"inputs\"",
        b":v",
    ];
    let mut out = input.to_vec();
    for _ in 0..rng.usize(1..5) {
        let at = rng.usize(0..=out.len());
        match rng.u8(0..4) {
            0 if !out.is_empty() => {
                let i = rng.usize(0..out.len());
                out[i] ^= 1 << rng.u8(0..8);
            }
            1 => {
                let t = TOKENS[rng.usize(0..TOKENS.len())];
                out.splice(at..at, t.iter().copied());
            }
            2 if at < out.len() => {
                let end = rng.usize(at..=out.len());
                out.drain(at..end);
            }
            _ if at < out.len() => {
                let end = rng.usize(at..=out.len().min(at + 32));
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ => out.push(rng.u8(..)),
        }
    }
    out
}

fn smoke(target: &str, check: impl Fn(&[u8])) {
    let inputs = corpus(target);
    for input in &inputs {
        check(input);
    }
    let mut rng = fastrand::Rng::with_seed(0xf022);
    for _ in 0..MUTATIONS {
        let input = &inputs[rng.usize(0..inputs.len())];
        check(&mutate(&mut rng, input));
    }
}

#[test]
fn request_target() {
    smoke("request", check_request);
}

#[test]
fn render_target() {
    smoke("render", |d| {
        check_render(d);
    });
}

#[test]
fn decode_target() {
    smoke("decode", check_decode);
}
