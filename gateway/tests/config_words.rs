//! Every closed set of config words rejects a bad word at its
//! FILE:LINE:COL with the list of accepted words, and accepts each word.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use edgevisor::config::{Codec, Config};

const MINIMAL: &str = "[gateway]\nid = \"gw\"\n\n[upstream]\nurl = \"mqtt://127.0.0.1:1883\"\n";

fn report(text: &str) -> String {
    Config::parse(Path::new("t.toml"), text)
        .unwrap_err()
        .to_string()
}

fn sensor(keys: &str) -> String {
    format!("{MINIMAL}[[sensor]]\nid = \"s\"\ntransport = \"serial\"\ndevice = \"/dev/x\"\n{keys}")
}

#[test]
fn bad_words_are_located_and_list_the_accepted_ones() {
    let hint = "\n  hint: use one of the values listed";
    assert_eq!(
        report(&format!(
            "{MINIMAL}[supervisor]\non_exhausted = \"explode\"\n"
        )),
        format!(
            "t.toml:7:16: unknown variant `explode`, expected `escalate` or `quarantine`{hint}"
        )
    );
    let group =
        format!("{MINIMAL}[[group]]\nid = \"g\"\nstrategy = \"all_for_one\"\nsensors = []\n");
    assert!(report(&group).contains(&format!(
        "t.toml:8:12: unknown variant `all_for_one`, expected one of `one_for_one`, `one_for_all`, `rest_for_one`{hint}"
    )));
    let text = sensor("codec = \"nmea\"\nchecksum = \"maybe\"\nrestart = \"sometimes\"\nparity = \"mark\"\ndata_bits = 9\nstop_bits = 3\n");
    let want = [
        "t.toml:11:12: unknown variant `maybe`, expected `required` or `optional`".to_string() + hint,
        "t.toml:12:11: unknown variant `sometimes`, expected one of `permanent`, `transient`, `temporary`".to_string() + hint,
        "t.toml:13:10: unknown variant `mark`, expected one of `none`, `even`, `odd`".to_string() + hint,
        "t.toml:14:13: invalid data_bits 9\n  hint: use one of [5, 6, 7, 8]".to_string(),
        "t.toml:15:13: invalid stop_bits 3\n  hint: use one of [1, 2]".to_string(),
    ];
    assert_eq!(report(&text), want.join("\n"));
    let text = sensor("codec = \"xml\"\n");
    assert!(report(&text).contains(&format!("t.toml:10:9: unknown variant `xml`, expected one of `lines`, `nmea`, `frame`, `json`, `modbus`{hint}")));
    let text = sensor("codec = 5\n");
    assert!(
        report(&text).contains("t.toml:10:9: invalid type: integer `5`, expected one of `lines`")
    );
}

#[test]
fn every_word_reaches_the_library_enum() {
    use edgevisor::config::{GroupStrategy, LinkConfig, RootChild};
    use edgevisor_devices::codec::{ChecksumPolicy, CodecKind};
    use edgevisor_devices::link::serial::{DataBits, Parity, StopBits};
    use edgevisor_runtime::{OnExhausted, Restart};

    let text = sensor("codec = \"nmea\"\nchecksum = \"optional\"\nrestart = \"transient\"\nparity = \"even\"\ndata_bits = 7\nstop_bits = 2\non_exhausted = \"escalate\"\n")
        + "[[sensor]]\nid = \"t\"\ntransport = \"tcp\"\naddress = \"h:1\"\ncodec = \"frame\"\n"
        + "[[group]]\nid = \"g\"\nstrategy = \"one_for_all\"\nsensors = [\"t\"]\n";
    let config = Config::parse(Path::new("t.toml"), &text).unwrap();
    let s = config.sensors().find(|s| s.id == "s").unwrap();
    assert_eq!(
        (s.codec, s.checksum, s.restart),
        (
            Codec::Stream(CodecKind::Nmea),
            ChecksumPolicy::Optional,
            Restart::Transient
        )
    );
    assert_eq!(s.policy.on_exhausted, OnExhausted::Escalate);
    assert!(matches!(
        s.link,
        LinkConfig::Serial {
            data_bits: DataBits::Seven,
            parity: Parity::Even,
            stop_bits: StopBits::Two,
            ..
        }
    ));
    let t = config.sensors().find(|s| s.id == "t").unwrap();
    assert_eq!(
        (t.codec, t.checksum, t.restart, t.max_frame),
        (
            Codec::Stream(CodecKind::Frame),
            ChecksumPolicy::Required,
            Restart::Permanent,
            4096
        )
    );
    let group = config.children.iter().find_map(|c| match c {
        RootChild::Group(g) => Some(g),
        RootChild::Sensor(_) => None,
    });
    assert_eq!(group.map(|g| g.strategy), Some(GroupStrategy::OneForAll));
}
