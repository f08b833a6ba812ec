//! Just enough DER to read the subject of an X.509 certificate: its common name and
//! organizational unit (a peer's name and role), and its attributes in order (to rebuild
//! the CA as an rcgen issuer). Everything else in the certificate is skipped.
//!
//! The certificates read here have already been verified by rustls, or were written by
//! us; the reader still checks every length against the input and never panics.

/// Why a certificate's names could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed certificate: {0}")]
pub struct DerError(&'static str);

/// `2.5.4.3`, id-at-commonName, as DER content bytes.
pub(crate) const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// `2.5.4.11`, id-at-organizationalUnitName.
pub(crate) const OID_ORGANIZATIONAL_UNIT: &[u8] = &[0x55, 0x04, 0x0b];

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
const TAG_INTEGER: u8 = 0x02;
const TAG_VERSION: u8 = 0xa0;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_IA5_STRING: u8 = 0x16;

/// One element: its tag and its content.
#[derive(Debug, Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// A cursor over a run of DER elements.
#[derive(Debug)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn next(&mut self) -> Result<Tlv<'a>, DerError> {
        let (&tag, rest) = self.0.split_first().ok_or(DerError("truncated element"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("multi-byte tags are not used in certificates"));
        }
        let (&first, mut rest) = rest.split_first().ok_or(DerError("truncated length"))?;
        let len = match first {
            0..=0x7f => usize::from(first),
            0x81..=0x84 => {
                let count = usize::from(first & 0x7f);
                if rest.len() < count {
                    return Err(DerError("truncated length"));
                }
                let (digits, after) = rest.split_at(count);
                rest = after;
                digits
                    .iter()
                    .fold(0usize, |len, &digit| (len << 8) | usize::from(digit))
            }
            _ => return Err(DerError("unsupported length encoding")),
        };
        if rest.len() < len {
            return Err(DerError("element longer than its container"));
        }
        let (content, after) = rest.split_at(len);
        self.0 = after;
        Ok(Tlv { tag, content })
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerError> {
        let tlv = self.next()?;
        if tlv.tag == tag {
            Ok(tlv)
        } else {
            Err(DerError(what))
        }
    }
}

/// One attribute of a distinguished name, e.g. `CN=replica-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attribute<'a> {
    /// The attribute type's OID as DER content bytes.
    pub oid: &'a [u8],
    /// The string type's DER tag (UTF8String, PrintableString, ...).
    pub tag: u8,
    pub value: &'a [u8],
}

/// The subject of a certificate.
#[derive(Debug, Clone)]
pub(crate) struct Names<'a> {
    /// The subject's attributes in order, one per relative distinguished name.
    pub subject_attributes: Vec<Attribute<'a>>,
}

impl Names<'_> {
    /// The first subject attribute of type `oid` as text, if it is a text string type.
    pub fn subject_text(&self, oid: &[u8]) -> Option<&str> {
        self.subject_attributes
            .iter()
            .find(|a| a.oid == oid)
            .filter(|a| {
                matches!(
                    a.tag,
                    TAG_UTF8_STRING | TAG_PRINTABLE_STRING | TAG_IA5_STRING
                )
            })
            .and_then(|a| std::str::from_utf8(a.value).ok())
    }
}

/// Reads the subject of a DER certificate.
pub(crate) fn names(certificate: &[u8]) -> Result<Names<'_>, DerError> {
    let cert = Reader(certificate).expect(TAG_SEQUENCE, "not a certificate")?;
    let tbs = Reader(cert.content).expect(TAG_SEQUENCE, "no tbsCertificate")?;
    let mut tbs = Reader(tbs.content);
    if tbs.peek_tag() == Some(TAG_VERSION) {
        tbs.next()?;
    }
    tbs.expect(TAG_INTEGER, "no serial number")?;
    tbs.expect(TAG_SEQUENCE, "no signature algorithm")?;
    tbs.expect(TAG_SEQUENCE, "no issuer name")?;
    tbs.expect(TAG_SEQUENCE, "no validity")?;
    let subject = tbs.expect(TAG_SEQUENCE, "no subject name")?;

    let mut subject_attributes = Vec::new();
    let mut rdns = Reader(subject.content);
    while !rdns.is_empty() {
        let rdn = rdns.expect(TAG_SET, "name part is not a SET")?;
        let mut set = Reader(rdn.content);
        while !set.is_empty() {
            let pair = set.expect(TAG_SEQUENCE, "name attribute is not a SEQUENCE")?;
            let mut pair = Reader(pair.content);
            let oid = pair.expect(TAG_OID, "name attribute without a type")?;
            let value = pair.next()?;
            subject_attributes.push(Attribute {
                oid: oid.content,
                tag: value.tag,
                value: value.content,
            });
        }
    }
    Ok(Names { subject_attributes })
}

/// Decodes OID content bytes into arcs (`[0x55, 0x04, 0x03]` is `2.5.4.3`).
pub(crate) fn oid_arcs(content: &[u8]) -> Result<Vec<u64>, DerError> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    let mut in_arc = false;
    for &byte in content {
        if value > (u64::MAX >> 7) {
            return Err(DerError("OID arc too large"));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        in_arc = byte & 0x80 != 0;
        if !in_arc {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return Err(DerError("truncated OID"));
    }
    Ok(arcs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_arcs_decode_short_and_multibyte_arcs() {
        assert_eq!(oid_arcs(OID_COMMON_NAME), Ok(vec![2, 5, 4, 3]));
        // 1.2.840.113549 (RSA): multi-byte arcs.
        assert_eq!(
            oid_arcs(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            Ok(vec![1, 2, 840, 113_549])
        );
        assert!(oid_arcs(&[0x2a, 0x86]).is_err());
        assert!(oid_arcs(&[]).is_err());
    }

    #[test]
    fn truncated_and_overlong_input_is_an_error_not_a_panic() {
        assert!(names(&[]).is_err());
        assert!(names(&[0x30]).is_err());
        assert!(names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(names(&[0x30, 0x80, 0x00, 0x00]).is_err());
        assert!(names(&[0x30, 0x03, 0x30, 0x01]).is_err());
        // Every prefix of a real certificate fails cleanly.
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["a".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let der = cert.der().as_ref();
        assert!(names(der).is_ok());
        for end in 0..der.len() {
            assert!(names(&der[..end]).is_err(), "prefix of {end} bytes");
        }
    }
}
