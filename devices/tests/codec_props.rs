//! Property tests: encode-then-decode round trips for every codec, and on
//! arbitrary bytes in arbitrary splits the decoders never panic, never
//! buffer more than `max_buffered`, and always produce JSON objects.

use base64::Engine as _;
use bytes::BytesMut;
use edgevisor_devices::codec::testing::{decode_chunks, Outcome};
use edgevisor_devices::codec::{
    ChecksumPolicy, CodecConfig, CodecKind, FrameCodec, JsonCodec, LinesCodec, NmeaCodec,
};
use proptest::prelude::*;
use serde_json::Value;
use tokio_util::codec::Encoder;

fn splits(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for p in points {
        out.push(data[from..p].to_vec());
        from = p;
    }
    out.push(data[from..].to_vec());
    out
}

fn decode_split(config: CodecConfig, data: &[u8], cuts: &[usize]) -> Vec<Outcome> {
    let chunks = splits(data, cuts);
    decode_chunks(&config, chunks.iter().map(Vec::as_slice)).expect("decoder contract")
}

fn data_of(o: &Outcome) -> Value {
    match o {
        Outcome::Reading(text) => serde_json::from_str(text).expect("json"),
        Outcome::Corrupt(k) => panic!("unexpected corrupt frame {k:?}"),
    }
}

proptest! {
    #[test]
    fn lines_round_trip(lines in prop::collection::vec("[^\n\r\u{0}]{0,80}", 1..20), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let mut buf = BytesMut::new();
        for l in &lines {
            LinesCodec::new(4096).encode(l.as_str(), &mut buf).expect("encodable");
        }
        let out = decode_split(CodecConfig::new(CodecKind::Lines), &buf, &cuts);
        prop_assert_eq!(out.len(), lines.len());
        for (o, l) in out.iter().zip(&lines) {
            let d = data_of(o);
            prop_assert_eq!(d["text"].as_str(), Some(l.as_str()));
        }
    }

    #[test]
    fn nmea_round_trip(
        sentences in prop::collection::vec(("[$!]", "[A-Z]{2}[A-Z0-9]{1,4}", prop::collection::vec("[a-zA-Z0-9. \"\\\\#-]{0,10}", 0..16)), 1..10),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut buf = BytesMut::new();
        for (start, address, fields) in &sentences {
            let mut body = format!("{start}{address}");
            for f in fields {
                body.push(',');
                body.push_str(f);
            }
            NmeaCodec::new(256, ChecksumPolicy::Required).encode(body.as_str(), &mut buf).expect("encodable");
        }
        let out = decode_split(CodecConfig::new(CodecKind::Nmea), &buf, &cuts);
        prop_assert_eq!(out.len(), sentences.len());
        for (o, (_, address, fields)) in out.iter().zip(&sentences) {
            let d = data_of(o);
            prop_assert_eq!(d["address"].as_str(), Some(address.as_str()));
            let got: Vec<&str> = d["fields"].as_array().expect("array").iter().filter_map(Value::as_str).collect();
            prop_assert_eq!(got, fields.iter().map(String::as_str).collect::<Vec<_>>());
            let talker = if address.starts_with('P') { &address[..1] } else { &address[..2] };
            prop_assert_eq!(d["talker"].as_str(), Some(talker));
        }
    }

    #[test]
    fn frame_round_trip(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..10), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let mut buf = BytesMut::new();
        for p in &payloads {
            FrameCodec::new(4096).encode(p.as_slice(), &mut buf).expect("encodable");
        }
        let out = decode_split(CodecConfig::new(CodecKind::Frame), &buf, &cuts);
        prop_assert_eq!(out.len(), payloads.len());
        for (o, p) in out.iter().zip(&payloads) {
            let b64 = data_of(o)["payload_b64"].as_str().expect("string").to_owned();
            prop_assert_eq!(&base64::engine::general_purpose::STANDARD.decode(b64).expect("base64"), p);
        }
    }

    #[test]
    fn json_round_trip(objects in prop::collection::vec(prop::collection::btree_map("[a-z\"\\\\é]{1,8}", any::<i64>(), 0..6), 1..10), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let mut buf = BytesMut::new();
        for o in &objects {
            let text = serde_json::to_string(o).expect("serialisable");
            JsonCodec::new(4096).encode(text.as_str(), &mut buf).expect("encodable");
        }
        let out = decode_split(CodecConfig::new(CodecKind::Json), &buf, &cuts);
        prop_assert_eq!(out.len(), objects.len());
        for (o, want) in out.iter().zip(&objects) {
            prop_assert_eq!(data_of(o), serde_json::to_value(want).expect("value"));
        }
    }

    #[test]
    fn arbitrary_bytes_never_break_the_contract(data in prop::collection::vec(any::<u8>(), 0..2048), cuts in prop::collection::vec(any::<usize>(), 0..10), max in 1usize..100) {
        for kind in CodecKind::ALL {
            let config = CodecConfig { max_frame: max, ..CodecConfig::new(kind) };
            let chunks = splits(&data, &cuts);
            if let Err(e) = decode_chunks(&config, chunks.iter().map(Vec::as_slice)) {
                prop_assert!(false, "{kind}: {e}");
            }
        }
    }

    #[test]
    fn line_codecs_resynchronise_after_garbage(garbage in prop::collection::vec(any::<u8>(), 0..300), cuts in prop::collection::vec(any::<usize>(), 0..4)) {
        let mut input = garbage.clone();
        input.extend_from_slice(b"\n{\"ok\":1}\n");
        for kind in [CodecKind::Lines, CodecKind::Json] {
            let config = CodecConfig { max_frame: 64, ..CodecConfig::new(kind) };
            let out = decode_split(config, &input, &cuts);
            let want = if kind == CodecKind::Json { r#"{"ok":1}"# } else { r#"{"text":"{\"ok\":1}"}"# };
            prop_assert_eq!(out.last(), Some(&Outcome::Reading(want.to_owned())));
        }
        let mut input = garbage.clone();
        let mut good = BytesMut::new();
        NmeaCodec::new(256, ChecksumPolicy::Required).encode("$GPGGA,1", &mut good).expect("encodable");
        input.extend_from_slice(b"\r\n");
        input.extend_from_slice(&good);
        let config = CodecConfig::new(CodecKind::Nmea);
        let out = decode_split(config, &input, &cuts);
        prop_assert!(matches!(out.last(), Some(Outcome::Reading(_))));
    }
}

proptest! {
    // Each case decodes 4 MiB; a few cases cover the byte values that matter.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn a_megabyte_flood_without_frame_ends_stays_bounded(byte in prop_oneof![Just(b'x'), Just(0xA5u8), Just(b'$'), Just(b'{'), any::<u8>()]) {
        // A peer that never sends a frame end: the buffer stays bounded.
        let flood = vec![byte; 1 << 20];
        for kind in CodecKind::ALL {
            let config = CodecConfig { max_frame: 512, ..CodecConfig::new(kind) };
            prop_assert!(decode_chunks(&config, flood.chunks(8192)).is_ok());
        }
    }
}
