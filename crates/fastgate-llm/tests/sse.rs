//! SSE codec: parsing rules, bounds, split invariance (property-tested).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests and their helpers fail the test on error"
)]

use fastgate_llm::LlmError;
use fastgate_llm::sse::{SseDecoder, SseEvent, encode};
use proptest::prelude::*;

fn ev(event: Option<&str>, data: &str) -> SseEvent {
    SseEvent {
        event: event.map(str::to_owned),
        data: data.to_owned(),
    }
}

/// Decode `input` split at `cuts`; returns events and the error (as text), if any.
fn decode(input: &[u8], cuts: &[usize], max: usize) -> (Vec<SseEvent>, Option<String>) {
    let mut d = SseDecoder::new(max);
    let mut out = Vec::new();
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    let mut last = 0;
    for c in cuts.into_iter().chain(std::iter::once(input.len())) {
        if let Err(e) = d.feed(&input[last..c], &mut out) {
            return (out, Some(e.to_string()));
        }
        last = c;
    }
    let err = d.finish(&mut out).err().map(|e| e.to_string());
    (out, err)
}

#[test]
fn parsing_rules() {
    let input = "\u{feff}: keep-alive comment\n\
        event: first\ndata: a\ndata:b\ndata\n\n\
        id: 7\nretry: 100\n\n\
        event: only-name\n\n\
        data: crlf\r\n\r\n\
        data: cr\r\rdata:  two spaces\n\n\
        unknown: x\ndata: {\"k\":1}\n\n\
        data: tail-without-blank-line";
    let (events, err) = decode(input.as_bytes(), &[], 1024);
    assert!(err.is_none());
    assert_eq!(
        events,
        vec![
            ev(Some("first"), "a\nb\n"),
            ev(None, "crlf"),
            ev(None, "cr"),
            ev(None, " two spaces"),
            ev(None, "{\"k\":1}"),
            ev(None, "tail-without-blank-line"),
        ]
    );
}

#[test]
fn bound_is_exact_and_sticky() {
    // "data: xxxx\n\n" is 6 + n + 2 bytes.
    let at_limit = format!("data: {}\n\n", "x".repeat(56));
    assert_eq!(at_limit.len(), 64);
    let (events, err) = decode(at_limit.as_bytes(), &[], 64);
    assert_eq!((events.len(), err), (1, None));
    let over = format!("data: ok\n\ndata: {}\n\ndata: never\n\n", "x".repeat(57));
    for cut in 0..over.len() {
        let (events, err) = decode(over.as_bytes(), &[cut], 64);
        assert_eq!(events, vec![ev(None, "ok")], "cut {cut}");
        assert_eq!(
            err.as_deref(),
            Some("SSE event exceeds 64 bytes"),
            "cut {cut}"
        );
    }
    let mut d = SseDecoder::new(64);
    let mut out = Vec::new();
    assert!(d.feed(over.as_bytes(), &mut out).is_err());
    assert!(matches!(
        d.feed(b"data: x\n\n", &mut out),
        Err(LlmError::EventTooLarge { limit: 64 })
    ));
}

#[test]
fn endless_line_without_newline_is_bounded() {
    let mut d = SseDecoder::new(1000);
    let mut out = Vec::new();
    let chunk = [b'a'; 100];
    let mut fed = 0;
    let err = loop {
        match d.feed(&chunk, &mut out) {
            Ok(()) => fed += chunk.len(),
            Err(e) => break e,
        }
        assert!(fed <= 1000);
    };
    assert!(matches!(err, LlmError::EventTooLarge { .. }));
}

#[test]
fn bad_utf8_becomes_replacement_characters() {
    let (events, err) = decode(b"data: a\xffb\xc3\n\n", &[], 100);
    assert!(err.is_none());
    assert_eq!(events, vec![ev(None, "a\u{FFFD}b\u{FFFD}")]);
    // A multi-byte character split across chunks is not damaged.
    let (events, _) = decode("data: é😀\n\n".as_bytes(), &[7, 9], 100);
    assert_eq!(events, vec![ev(None, "é😀")]);
}

#[test]
fn encode_shapes() {
    assert_eq!(
        &encode(Some("ping"), "{}")[..],
        b"event: ping\ndata: {}\n\n"
    );
    assert_eq!(&encode(None, "a\nb")[..], b"data: a\ndata: b\n\n");
    assert_eq!(&encode(None, "")[..], b"data: \n\n");
}

fn transcript() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(b"\xEF\xBB\xBF: hi\r\n");
    t.extend_from_slice(&encode(
        Some("message_start"),
        "{\"type\":\"message_start\"}",
    ));
    t.extend_from_slice(b"data: multi\r\ndata: line\r\n\r\n");
    t.extend_from_slice(b"data: cr only\r\r");
    t.extend_from_slice("data: ünïcödé 😀 text\n\n".as_bytes());
    t.extend_from_slice(b"data: [DONE]\n\n");
    t
}

#[test]
fn transcript_split_at_every_offset_parses_the_same() {
    let t = transcript();
    let whole = decode(&t, &[], 4096);
    assert_eq!(whole.0.len(), 5);
    for i in 0..=t.len() {
        assert_eq!(decode(&t, &[i], 4096), whole, "cut at {i}");
        for j in i..=t.len() {
            assert_eq!(decode(&t, &[i, j], 4096), whole, "cuts at {i},{j}");
        }
    }
}

proptest! {
    #[test]
    fn random_splits_parse_the_same(cuts in proptest::collection::vec(any::<usize>(), 0..20)) {
        let t = transcript();
        prop_assert_eq!(decode(&t, &cuts, 4096), decode(&t, &[], 4096));
    }

    #[test]
    fn arbitrary_bytes_split_invariant(data in proptest::collection::vec(any::<u8>(), 0..400),
                                       cuts in proptest::collection::vec(any::<usize>(), 0..8),
                                       max in 16usize..200) {
        prop_assert_eq!(decode(&data, &cuts, max), decode(&data, &[], max));
    }

    #[test]
    fn sse_shaped_bytes_split_invariant(parts in proptest::collection::vec(
            prop_oneof![Just("data: x".to_string()), Just("event: e".to_string()), Just(":c".to_string()),
                        Just("\n".to_string()), Just("\r".to_string()), Just("\r\n".to_string()),
                        Just("\u{feff}".to_string()), "[a-z:é ]{0,6}"], 0..40),
            cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let data = parts.concat().into_bytes();
        prop_assert_eq!(decode(&data, &cuts, 64), decode(&data, &[], 64));
    }

    #[test]
    fn encode_decode_round_trip(event in proptest::option::of("[a-z_]{1,12}"), data in "\\PC{0,40}") {
        let bytes = encode(event.as_deref(), &data);
        let (events, err) = decode(&bytes, &[], 1 << 16);
        prop_assert!(err.is_none());
        // Line terminators inside data normalise to \n.
        let expected = data.replace("\r\n", "\n").replace('\r', "\n");
        prop_assert_eq!(events, vec![SseEvent { event, data: expected }]);
    }
}
