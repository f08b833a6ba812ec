//! WAV (RIFF/WAVE) headers: written by the recorder, read for prompts, repaired after a crash.
//!
//! Sans-IO: [`WavFormat::header`] returns the 44-byte canonical header for a given data
//! length, [`parse`] finds the format and the `data` chunk in a file's bytes (skipping
//! chunks it does not know, such as `LIST` or `fact`). A recorder writes the header with
//! a zero length first and patches it at the end; a file whose process died before that
//! is fixed by rewriting the header from the file's length ([`WavFormat::header`] again).

use thiserror::Error;

/// Length of the canonical header written by [`WavFormat::header`].
pub const HEADER_LEN: usize = 44;

/// Sample encoding inside a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Signed 16-bit little-endian linear PCM (format tag 1).
    Pcm16,
    /// G.711 A-law (format tag 6).
    Alaw,
    /// G.711 μ-law (format tag 7).
    Ulaw,
}

impl Encoding {
    fn tag(self) -> u16 {
        match self {
            Encoding::Pcm16 => 1,
            Encoding::Alaw => 6,
            Encoding::Ulaw => 7,
        }
    }

    /// Bytes per sample of one channel.
    pub fn bytes_per_sample(self) -> u16 {
        match self {
            Encoding::Pcm16 => 2,
            Encoding::Alaw | Encoding::Ulaw => 1,
        }
    }
}

/// The format of a WAV file's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// Sample encoding.
    pub encoding: Encoding,
    /// Channels, interleaved (1 = mono, 2 = stereo).
    pub channels: u16,
    /// Samples per second per channel.
    pub sample_rate: u32,
}

impl WavFormat {
    /// Bytes of one frame (one sample of every channel).
    pub fn block_align(&self) -> u16 {
        self.channels * self.encoding.bytes_per_sample()
    }

    /// The canonical 44-byte header for `data_len` bytes of samples.
    pub fn header(&self, data_len: u32) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        let block_align = self.block_align();
        h[0..4].copy_from_slice(b"RIFF");
        h[4..8].copy_from_slice(&(36u32.saturating_add(data_len)).to_le_bytes());
        h[8..12].copy_from_slice(b"WAVE");
        h[12..16].copy_from_slice(b"fmt ");
        h[16..20].copy_from_slice(&16u32.to_le_bytes());
        h[20..22].copy_from_slice(&self.encoding.tag().to_le_bytes());
        h[22..24].copy_from_slice(&self.channels.to_le_bytes());
        h[24..28].copy_from_slice(&self.sample_rate.to_le_bytes());
        h[28..32].copy_from_slice(&(self.sample_rate * u32::from(block_align)).to_le_bytes());
        h[32..34].copy_from_slice(&block_align.to_le_bytes());
        h[34..36].copy_from_slice(&(self.encoding.bytes_per_sample() * 8).to_le_bytes());
        h[36..40].copy_from_slice(b"data");
        h[40..44].copy_from_slice(&data_len.to_le_bytes());
        h
    }
}

/// Why bytes are not a WAV file we can use.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WavError {
    #[error("not a RIFF/WAVE file")]
    NotWave,
    #[error("the file ends inside its headers")]
    Truncated,
    #[error("no `fmt ` chunk before the `data` chunk")]
    MissingFormat,
    #[error("no `data` chunk")]
    MissingData,
    #[error("unsupported sample format (tag {tag}, {bits} bits); use 16-bit PCM, A-law or μ-law")]
    UnsupportedFormat { tag: u16, bits: u16 },
    #[error("{0} channels; use mono or stereo")]
    UnsupportedChannels(u16),
}

/// A parsed WAV file: its format and where its samples are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wav {
    pub format: WavFormat,
    /// Offset of the first sample byte.
    pub data_offset: usize,
    /// Length of the samples in bytes, clipped to what the file holds (a header that
    /// claims more than the file has, as after a crash, is not trusted).
    pub data_len: usize,
}

impl Wav {
    /// The sample bytes of `file`.
    pub fn data<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.data_offset..self.data_offset + self.data_len]
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, WavError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or(WavError::Truncated)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, WavError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(WavError::Truncated)
}

/// Parses a WAV file's headers.
pub fn parse(file: &[u8]) -> Result<Wav, WavError> {
    if file.len() < 12 || &file[0..4] != b"RIFF" || &file[8..12] != b"WAVE" {
        return Err(WavError::NotWave);
    }
    let mut at = 12;
    let mut format = None;
    loop {
        let id = file.get(at..at + 4).ok_or(if format.is_some() {
            WavError::MissingData
        } else {
            WavError::MissingFormat
        })?;
        let len = u32_at(file, at + 4)? as usize;
        let body = at + 8;
        match id {
            b"fmt " => {
                let tag = u16_at(file, body)?;
                let channels = u16_at(file, body + 2)?;
                let sample_rate = u32_at(file, body + 4)?;
                let bits = u16_at(file, body + 14)?;
                // WAVE_FORMAT_EXTENSIBLE carries the real tag in its sub-format GUID.
                let tag = if tag == 0xFFFE {
                    u16_at(file, body + 24)?
                } else {
                    tag
                };
                let encoding = match (tag, bits) {
                    (1, 16) => Encoding::Pcm16,
                    (6, 8) => Encoding::Alaw,
                    (7, 8) => Encoding::Ulaw,
                    _ => return Err(WavError::UnsupportedFormat { tag, bits }),
                };
                if !(1..=2).contains(&channels) {
                    return Err(WavError::UnsupportedChannels(channels));
                }
                format = Some(WavFormat {
                    encoding,
                    channels,
                    sample_rate,
                });
            }
            b"data" => {
                let format = format.ok_or(WavError::MissingFormat)?;
                let available = file.len().saturating_sub(body);
                let data_len = len.min(available);
                // Only whole frames.
                let block = usize::from(format.block_align());
                return Ok(Wav {
                    format,
                    data_offset: body,
                    data_len: data_len - data_len % block,
                });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        at = body + len + (len & 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_headers_parse_back() {
        for encoding in [Encoding::Pcm16, Encoding::Alaw, Encoding::Ulaw] {
            for channels in [1, 2] {
                let format = WavFormat {
                    encoding,
                    channels,
                    sample_rate: 8000,
                };
                let mut file = format.header(8).to_vec();
                file.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
                let wav = parse(&file).unwrap();
                assert_eq!(wav.format, format);
                assert_eq!(wav.data_offset, HEADER_LEN);
                assert_eq!(wav.data(&file), &[1, 2, 3, 4, 5, 6, 7, 8]);
            }
        }
    }

    #[test]
    fn unknown_chunks_are_skipped_and_a_lying_length_is_clipped() {
        let format = WavFormat {
            encoding: Encoding::Pcm16,
            channels: 2,
            sample_rate: 8000,
        };
        let header = format.header(1_000_000);
        let mut file = header[..36].to_vec();
        file.extend_from_slice(b"LIST");
        file.extend_from_slice(&3u32.to_le_bytes());
        file.extend_from_slice(b"abc\0"); // odd length, padded
        file.extend_from_slice(&header[36..]);
        file.extend_from_slice(&[0u8; 10]); // 2.5 frames: the partial one is dropped
        let wav = parse(&file).unwrap();
        assert_eq!(wav.data_len, 8);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert_eq!(parse(b"hello"), Err(WavError::NotWave));
        let mut file = WavFormat {
            encoding: Encoding::Pcm16,
            channels: 1,
            sample_rate: 8000,
        }
        .header(0)
        .to_vec();
        file[34] = 24; // 24-bit
        assert_eq!(
            parse(&file),
            Err(WavError::UnsupportedFormat { tag: 1, bits: 24 })
        );
        file[34] = 16;
        file[22] = 6; // six channels
        assert_eq!(parse(&file), Err(WavError::UnsupportedChannels(6)));
        assert_eq!(parse(&file[..30]), Err(WavError::Truncated));
        assert_eq!(parse(&file[..12]), Err(WavError::MissingFormat));
    }
}
