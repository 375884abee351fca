//! Byte-table tests for every codec: valid frames, every kind of
//! corruption, garbage before a frame, end of input inside a frame, and the
//! same input split at every byte offset (and dripped byte by byte).

use bytes::BytesMut;
use edgevisor_devices::codec::testing::{decode_chunks, Outcome};
use edgevisor_devices::codec::{
    ChecksumPolicy, CodecConfig, CodecKind, CorruptKind, DecodeError, FrameCodec, NmeaCodec,
};
use tokio_util::codec::{Decoder, Encoder};

use CorruptKind::*;

fn r(json: &str) -> Outcome {
    Outcome::Reading(json.to_owned())
}

fn c(kind: CorruptKind) -> Outcome {
    Outcome::Corrupt(kind)
}

fn cfg(kind: CodecKind, max_frame: usize) -> CodecConfig {
    CodecConfig {
        max_frame,
        ..CodecConfig::new(kind)
    }
}

/// Decodes `input` whole, split in two at every offset, and byte by byte;
/// all must give `want`.
fn check(config: CodecConfig, input: &[u8], want: &[Outcome]) {
    let whole = decode_chunks(&config, [input]).expect("contract");
    assert_eq!(
        whole,
        want,
        "whole input {:?}",
        String::from_utf8_lossy(input)
    );
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        let got = decode_chunks(&config, [a, b]).expect("contract");
        assert_eq!(
            got,
            want,
            "split at {at} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    let drip = decode_chunks(&config, input.chunks(1)).expect("contract");
    assert_eq!(drip, want, "byte by byte");
}

fn nmea(body: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    NmeaCodec::new(256, ChecksumPolicy::Required)
        .encode(body, &mut out)
        .expect("encodable");
    out.to_vec()
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    FrameCodec::new(4096)
        .encode(payload, &mut out)
        .expect("encodable");
    out.to_vec()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn lines_table() {
    let k = cfg(CodecKind::Lines, 16);
    check(k, b"hello\n", &[r(r#"{"text":"hello"}"#)]);
    check(
        k,
        b"a\r\nb\n\n",
        &[
            r(r#"{"text":"a"}"#),
            r(r#"{"text":"b"}"#),
            r(r#"{"text":""}"#),
        ],
    );
    check(k, b"say \"hi\"\t\\\n", &[r(r#"{"text":"say \"hi\"\t\\"}"#)]);
    check(
        k,
        "temp=21.5°C\n".as_bytes(),
        &[r(r#"{"text":"temp=21.5°C"}"#)],
    );
    check(k, b"a\rb\n", &[r(r#"{"text":"a\rb"}"#)]);
    check(
        k,
        b"ab\xffc\nok\n",
        &[c(InvalidUtf8), r(r#"{"text":"ok"}"#)],
    );
    check(k, b"a\0b\nok\n", &[c(NulByte), r(r#"{"text":"ok"}"#)]);
    check(
        k,
        b"0123456789abcdef\n",
        &[r(r#"{"text":"0123456789abcdef"}"#)],
    );
    check(
        k,
        b"0123456789abcdef\r\n",
        &[r(r#"{"text":"0123456789abcdef"}"#)],
    );
    check(
        k,
        b"0123456789abcdefX\nok\n",
        &[c(TooLong), r(r#"{"text":"ok"}"#)],
    );
    check(
        k,
        &cat(&[&[b'x'; 100], b"\nok\n"]),
        &[c(TooLong), r(r#"{"text":"ok"}"#)],
    );
    check(k, b"ok\nabc", &[r(r#"{"text":"ok"}"#), c(Truncated)]);
}

#[test]
fn nmea_table() {
    let k = CodecConfig::new(CodecKind::Nmea);
    let gga = nmea("$GPGGA,123519,4807.038,N,,1");
    let gga_json = r#"{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":["123519","4807.038","N","","1"]}"#;
    check(k, &gga, &[r(gga_json)]);
    let bare_lf = &gga[..gga.len() - 2];
    check(k, &cat(&[bare_lf, b"\n"]), &[r(gga_json)]);
    check(k, &cat(&[b"\r\n\r\n\n", &gga, b"\r\n"]), &[r(gga_json)]);
    check(
        k,
        &cat(&[b"\r\r\n \t\r\n  ", &gga, b" \r\n"]),
        &[r(gga_json)],
    );
    check(k, &cat(&[b" x", &gga]), &[c(NoStart), r(gga_json)]);
    check(
        k,
        &nmea("$PMTK001,604,3"),
        &[r(
            r#"{"address":"PMTK001","talker":"P","sentence":"MTK001","fields":["604","3"]}"#,
        )],
    );
    check(
        k,
        &nmea("$PGRME,15.0,M"),
        &[r(
            r#"{"address":"PGRME","talker":"P","sentence":"GRME","fields":["15.0","M"]}"#,
        )],
    );
    check(
        k,
        &nmea("!AIVDM,1,1,,A,13aEOK?P00PD2wVMdLDRhgvL289?,0"),
        &[r(
            r#"{"address":"AIVDM","talker":"AI","sentence":"VDM","fields":["1","1","","A","13aEOK?P00PD2wVMdLDRhgvL289?","0"]}"#,
        )],
    );
    check(
        k,
        &nmea("$GPGGA"),
        &[r(
            r#"{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":[]}"#,
        )],
    );
    check(
        k,
        &nmea("$GPGGA,"),
        &[r(
            r#"{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":[""]}"#,
        )],
    );
    check(
        k,
        &nmea("$GPTXT,say \"x\\\""),
        &[r(
            r#"{"address":"GPTXT","talker":"GP","sentence":"TXT","fields":["say \"x\\\""]}"#,
        )],
    );
    // Lower-case hex is accepted.
    let lower = String::from_utf8(nmea("$GPGLL,1"))
        .expect("ascii")
        .to_lowercase()
        .replace("$gpgll", "$GPGLL");
    check(
        k,
        lower.as_bytes(),
        &[r(
            r#"{"address":"GPGLL","talker":"GP","sentence":"GLL","fields":["1"]}"#,
        )],
    );
    // Corruptions, each followed by a good sentence to show resynchronisation.
    let mut bad_sum = gga.clone();
    let n = bad_sum.len();
    bad_sum[n - 3] = if bad_sum[n - 3] == b'0' { b'1' } else { b'0' };
    check(
        k,
        &cat(&[&bad_sum, &gga]),
        &[c(ChecksumMismatch), r(gga_json)],
    );
    check(
        k,
        &cat(&[b"$GPGGA,1\r\n", &gga]),
        &[c(MissingChecksum), r(gga_json)],
    );
    check(
        k,
        &cat(&[
            b"$GPGGA,1*\r\n",
            b"$GPGGA,1*4G\r\n",
            b"$GPGGA,1*000\r\n",
            &gga,
        ]),
        &[c(Malformed), c(Malformed), c(Malformed), r(gga_json)],
    );
    check(
        k,
        &cat(&[b"$GPGGA,\xc3\xa9*00\r\n", &gga]),
        &[c(NonAscii), r(gga_json)],
    );
    check(k, &cat(&[b"xyz", &gga]), &[c(NoStart), r(gga_json)]);
    check(k, &cat(&[b"hello\r\n", &gga]), &[c(NoStart), r(gga_json)]);
    check(k, &cat(&[b"$GPGGA,12", &gga]), &[c(Malformed), r(gga_json)]);
    check(
        k,
        &cat(&[&nmea("$G,1"), &gga]),
        &[c(Malformed), r(gga_json)],
    );
    check(
        k,
        &cat(&[&nmea("$GP,1"), &nmea("$P,1"), &gga]),
        &[c(Malformed), c(Malformed), r(gga_json)],
    );
    let long = format!("$GPTXT,{}*00\r\n", "x".repeat(300));
    check(
        k,
        &cat(&[long.as_bytes(), &gga]),
        &[c(TooLong), r(gga_json)],
    );
    check(k, &cat(&[&[b'z'; 400], &gga]), &[c(NoStart), r(gga_json)]);
    check(
        k,
        &cat(&[&gga, b"$GPGGA,1,2"]),
        &[r(gga_json), c(Truncated)],
    );
    // Optional checksums.
    let opt = CodecConfig {
        checksum: ChecksumPolicy::Optional,
        ..k
    };
    check(
        opt,
        b"$GPGGA,1\r\n",
        &[r(
            r#"{"address":"GPGGA","talker":"GP","sentence":"GGA","fields":["1"]}"#,
        )],
    );
    check(opt, &bad_sum, &[c(ChecksumMismatch)]);
}

#[test]
fn nmea_message_says_want_and_got() {
    let mut dec = CodecConfig::new(CodecKind::Nmea).decoder();
    // XOR of "GPGGA,1" is 0x4A... whatever it is, the sentence claims 47.
    let mut buf = BytesMut::from(&b"$GPGGA,1*00\r\n"[..]);
    let Err(DecodeError::Corrupt(err)) = dec.decode(&mut buf) else {
        panic!("expected corrupt")
    };
    let want = b"GPGGA,1".iter().fold(0u8, |a, b| a ^ b);
    assert_eq!(
        err.to_string(),
        format!("nmea checksum mismatch: want {want:02X} got 00")
    );
    assert_eq!(err.evidence().bytes(), b"$GPGGA,1*00");
    assert!(!err.evidence().truncated());
    assert!(err.can_continue());
}

#[test]
fn frame_table() {
    let k = cfg(CodecKind::Frame, 64);
    let hello = frame(b"hello");
    let hello_json = r#"{"payload_b64":"aGVsbG8="}"#;
    check(k, &hello, &[r(hello_json)]);
    check(k, &frame(b""), &[r(r#"{"payload_b64":""}"#)]);
    check(
        k,
        &frame(&[0xA5; 64]),
        &[r(&format!(
            r#"{{"payload_b64":"{}"}}"#,
            "paWl".repeat(21) + "pQ=="
        ))],
    );
    check(
        k,
        &cat(&[b"\x00\xA5\x11\xA5", &hello, &hello]),
        &[r(hello_json), r(hello_json)],
    );
    let mut bad_crc = hello.clone();
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 0x01;
    check(k, &cat(&[&bad_crc, &hello]), &[c(BadCrc), r(hello_json)]);
    let mut bad_version = hello.clone();
    bad_version[2] = 0x02;
    check(
        k,
        &cat(&[&bad_version, &hello]),
        &[c(UnknownVersion), r(hello_json)],
    );
    check(
        k,
        &cat(&[&[0xA5, 0x5A, 0x01, 0x00, 65], &hello]),
        &[c(TooLong), r(hello_json)],
    );
    check(
        k,
        &cat(&[&[0xA5, 0x5A, 0x01, 0xFF, 0xFF], &[0u8; 300], &hello]),
        &[c(TooLong), r(hello_json)],
    );
    check(
        k,
        &cat(&[&hello, &hello[..6]]),
        &[r(hello_json), c(Truncated)],
    );
    check(k, &cat(&[&hello, b"\x00\x01\xA5"]), &[r(hello_json)]);
}

#[test]
fn frame_counts_skipped_bytes_and_uses_ccitt_false() {
    assert_eq!(
        FrameCodec::crc(b"123456789"),
        0x29B1,
        "CRC-16/CCITT-FALSE check value"
    );
    let mut dec = CodecConfig::new(CodecKind::Frame).decoder();
    let mut buf = BytesMut::from(&cat(&[b"junk\xA5", &frame(b"x")])[..]);
    assert!(dec.decode(&mut buf).expect("valid").is_some());
    assert_eq!(dec.skipped_bytes(), 5);
}

#[test]
fn json_table() {
    let k = cfg(CodecKind::Json, 32);
    check(k, b"{\"a\":1}\n", &[r(r#"{"a":1}"#)]);
    check(
        k,
        b"  {\"a\": [1, \"x\"]} \r\n\n \n{}\n",
        &[r(r#"{"a": [1, "x"]}"#), r("{}")],
    );
    check(
        k,
        b"{\"a\":\n{\"b\":2}\n",
        &[c(InvalidJson), r(r#"{"b":2}"#)],
    );
    check(
        k,
        b"[1,2]\n42\n\"s\"\n{}\n",
        &[c(NotAnObject), c(NotAnObject), c(NotAnObject), r("{}")],
    );
    check(k, b"{} {}\n\xff\n", &[c(InvalidJson), c(InvalidJson)]);
    check(
        k,
        &cat(&[b"{\"k\":\"", &[b'v'; 40], b"\"}\n{}\n"]),
        &[c(TooLong), r("{}")],
    );
    check(k, b"{}\n{\"a\":", &[r("{}"), c(Truncated)]);
}

#[test]
fn json_messages_may_span_lines() {
    let mut dec = CodecConfig::new(CodecKind::Json).decoder();
    let out = dec.decode_message(b"{\n  \"temperature\": 21.5\n}\n");
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].as_ref().expect("valid").data_json(),
        "{\n  \"temperature\": 21.5\n}"
    );
    let out = dec.decode_message(b"[1]");
    assert_eq!(
        out[0].as_ref().map_err(|e| e.kind()).err(),
        Some(NotAnObject)
    );
    let mut lines = CodecConfig::new(CodecKind::Lines).decoder();
    let out = lines.decode_message(b"no newline");
    assert_eq!(
        out[0].as_ref().expect("valid").data_json(),
        r#"{"text":"no newline"}"#
    );
}

#[test]
fn codec_kind_names_follow_the_spec() {
    for k in CodecKind::ALL {
        assert_eq!(k.to_string().parse::<CodecKind>(), Ok(k));
    }
    assert_eq!("nmea".parse::<CodecKind>(), Ok(CodecKind::Nmea));
    assert!("csv".parse::<CodecKind>().is_err());
    assert_eq!(CodecConfig::new(CodecKind::Nmea).max_frame, 256);
    assert_eq!(CodecConfig::new(CodecKind::Json).max_frame, 4096);
    assert_eq!(
        "optional".parse::<ChecksumPolicy>(),
        Ok(ChecksumPolicy::Optional)
    );
}

#[test]
fn evidence_is_capped_and_marked_truncated() {
    let mut dec = cfg(CodecKind::Lines, 4096).decoder();
    let mut buf = BytesMut::from(&cat(&[&[0xFF; 1000], b"\n"])[..]);
    let Err(DecodeError::Corrupt(err)) = dec.decode(&mut buf) else {
        panic!("expected corrupt")
    };
    assert_eq!(err.evidence().bytes().len(), 256);
    assert!(err.evidence().truncated());
}
