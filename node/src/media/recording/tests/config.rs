//! `[media.recordings]` as an operator writes it, and the errors for what they get wrong.

use std::path::PathBuf;

use super::super::config::{RecordingConfig, RecordingConfigError, S3Config, StoreConfig};

fn parse(toml_text: &str) -> Result<RecordingConfig, String> {
    toml::from_str::<RecordingConfig>(toml_text).map_err(|e| e.to_string())
}

#[test]
fn defaults_and_a_local_store() {
    let default = parse("").unwrap();
    assert_eq!(default, RecordingConfig::default());
    assert!(matches!(default.store, StoreConfig::Local { .. }));

    let local = parse(
        r#"
        spool_dir = "/var/spool/tongdai"
        store = "local"
        dir = "/srv/recordings"
        "#,
    )
    .unwrap();
    assert_eq!(local.spool_dir, PathBuf::from("/var/spool/tongdai"));
    assert_eq!(
        local.store,
        StoreConfig::Local {
            dir: PathBuf::from("/srv/recordings")
        }
    );
    // It writes back to the same text form.
    let again = parse(&toml::to_string(&local).unwrap()).unwrap();
    assert_eq!(again, local);
}

#[test]
fn an_s3_store() {
    let config = parse(
        r#"
        spool_dir = "/var/spool/tongdai"
        store = "s3"
        bucket = "call-recordings"
        prefix = "/eu/tongdai/"
        endpoint = "http://127.0.0.1:9000"
        region = "eu-central-1"
        access_key_id = "AKIDEXAMPLE"
        secret_access_key = "wJalrXUtnFEMI"
        "#,
    )
    .unwrap();
    let StoreConfig::S3(s3) = &config.store else {
        panic!("not s3: {config:?}");
    };
    assert_eq!(s3.bucket, "call-recordings");
    assert_eq!(s3.prefix, "eu/tongdai");
    assert_eq!(s3.region, "eu-central-1");
    assert!(s3.allow_http());
    assert!(
        !format!("{config:?}").contains("wJalrXUtnFEMI"),
        "secret in Debug"
    );
    assert_eq!(parse(&toml::to_string(&config).unwrap()).unwrap(), config);

    let aws = parse("store = \"s3\"\nbucket = \"rec\"").unwrap();
    assert_eq!(
        aws.store,
        StoreConfig::S3(S3Config {
            bucket: "rec".to_owned(),
            prefix: String::new(),
            endpoint: None,
            region: "us-east-1".to_owned(),
            access_key_id: None,
            secret_access_key: None,
        })
    );
}

#[test]
fn mistakes_name_the_key_to_fix() {
    let cases: [(&str, RecordingConfigError); 9] = [
        (
            "store = \"ftp\"",
            RecordingConfigError::UnknownStore("ftp".into()),
        ),
        (
            "store = \"local\"\nbucket = \"x\"",
            RecordingConfigError::KeyForOtherStore {
                key: "bucket",
                applies_to: "s3",
                store: "local",
            },
        ),
        (
            "store = \"s3\"\nbucket = \"abc\"\ndir = \"/x\"",
            RecordingConfigError::KeyForOtherStore {
                key: "dir",
                applies_to: "local",
                store: "s3",
            },
        ),
        ("store = \"s3\"", RecordingConfigError::MissingBucket),
        (
            "store = \"s3\"\nbucket = \"Bad_Bucket\"",
            RecordingConfigError::BadBucket("Bad_Bucket".into()),
        ),
        (
            "store = \"s3\"\nbucket = \"abc\"\nendpoint = \"127.0.0.1:9000\"",
            RecordingConfigError::BadEndpoint("127.0.0.1:9000".into()),
        ),
        (
            "store = \"s3\"\nbucket = \"abc\"\naccess_key_id = \"AK\"",
            RecordingConfigError::HalfCredentials,
        ),
        (
            "store = \"s3\"\nbucket = \"abc\"\nprefix = \"a/../b c\"",
            RecordingConfigError::BadPrefix("a/../b c".into()),
        ),
        (
            "spool_dir = \"/same\"\ndir = \"/same\"",
            RecordingConfigError::SpoolIsStore,
        ),
    ];
    for (text, expected) in cases {
        let err = parse(text).unwrap_err();
        assert!(
            err.contains(&expected.to_string()),
            "{text:?}: got {err:?}, want {expected}"
        );
    }
    let typo = parse("spool = \"/x\"").unwrap_err();
    assert!(typo.contains("spool"), "{typo}");
}
