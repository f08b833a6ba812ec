//! Writing SDP: every line in RFC 8866 order with CRLF endings, whatever order the
//! optional lines were received in, so writing a parsed description gives back the same
//! text when it was already canonical.

use std::fmt;

use super::{
    AddressType, Attribute, Connection, Direction, Line, MediaDescription, MediaKind, Origin, Rtcp,
    RtpMap, SessionDescription,
};

/// RFC 8866 §5 order of the optional session lines; `c=` sits at [`SESSION_C_RANK`].
pub(super) fn session_rank(kind: u8) -> u8 {
    match kind {
        b'i' => 0,
        b'u' => 1,
        b'e' => 2,
        b'p' => 3,
        b'b' => 5,
        // r= belongs to the t= before it, so both share a rank and keep their order.
        b't' | b'r' => 6,
        b'z' => 7,
        _ => 8, // k=
    }
}
const SESSION_C_RANK: u8 = 4;

/// RFC 8866 §5 order of the optional media lines; `c=` sits at [`MEDIA_C_RANK`].
pub(super) fn media_rank(kind: u8) -> u8 {
    match kind {
        b'i' => 0,
        b'b' => 2,
        _ => 3, // k=
    }
}
const MEDIA_C_RANK: u8 = 1;

/// Writes the kept lines whose rank is below (`before == true`) or above `pivot`.
fn write_lines(
    f: &mut fmt::Formatter<'_>,
    lines: &[Line],
    rank: fn(u8) -> u8,
    pivot: u8,
    before: bool,
) -> fmt::Result {
    for line in lines.iter().filter(|l| (rank(l.kind) < pivot) == before) {
        write!(f, "{}={}\r\n", char::from(line.kind), line.value)?;
    }
    Ok(())
}

impl fmt::Display for AddressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.address_type(), self.address)?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(count) = self.address_count {
            write!(f, "/{count}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} IN {} {}",
            self.username, self.session_id, self.session_version, self.address_type, self.address
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RtpMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.encoding, self.clock_rate)?;
        if let Some(channels) = self.channels {
            write!(f, "/{channels}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(addr) = self.address {
            write!(f, " IN {} {}", AddressType::of(addr), addr)?;
        }
        Ok(())
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            write!(f, ":{value}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        write_lines(f, &self.lines, media_rank, MEDIA_C_RANK, true)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_lines(f, &self.lines, media_rank, MEDIA_C_RANK, false)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    /// Canonical SDP: RFC 8866 order, CRLF line endings.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\ns={}\r\n", self.origin, self.session_name)?;
        write_lines(f, &self.lines, session_rank, SESSION_C_RANK, true)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        write_lines(f, &self.lines, session_rank, SESSION_C_RANK, false)?;
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}
