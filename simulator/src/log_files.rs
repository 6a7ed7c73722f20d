//! The log files a replay reads, as CloudFront delivers them: plain or gzip-compressed (told by
//! the gzip magic bytes, not the name; a file of several gzip members, as S3 concatenations
//! make, reads whole), a folder of them (every file in it and its subfolders, in name order,
//! hidden files skipped), or `-` for stdin. Lines are read as bytes and decoded leniently
//! (a byte that is not UTF-8 becomes U+FFFD), so one odd user agent cannot stop a replay.

use flate2::read::MultiGzDecoder;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The first two bytes of every gzip member.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One input: its name for messages and where to read it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogInput {
    /// Standard input (`-`).
    Stdin,
    /// A file, plain or gzip.
    File(PathBuf),
}

impl LogInput {
    /// The path to name in messages.
    pub fn path(&self) -> PathBuf {
        match self {
            LogInput::Stdin => PathBuf::from("-"),
            LogInput::File(p) => p.clone(),
        }
    }

    /// The input's lines, decompressed when it is gzip.
    pub fn open(&self) -> std::io::Result<LogLines> {
        let raw: Box<dyn Read> = match self {
            LogInput::Stdin => Box::new(std::io::stdin()),
            LogInput::File(p) => Box::new(std::fs::File::open(p)?),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, raw);
        let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
        let reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(
                1 << 16,
                MultiGzDecoder::new(buffered),
            ))
        } else {
            Box::new(buffered)
        };
        Ok(LogLines {
            reader,
            buf: Vec::new(),
        })
    }
}

/// Expands `paths` (files, folders, `-`) into the inputs to read, in order; a folder becomes
/// its files in name order (subfolders included, hidden entries skipped). A path that does not
/// exist is an error naming it; a folder without files is one too.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<LogInput>, (PathBuf, std::io::Error)> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(LogInput::Stdin);
            continue;
        }
        let meta = std::fs::metadata(p).map_err(|e| (p.clone(), e))?;
        if meta.is_dir() {
            let before = out.len();
            walk(p, &mut out).map_err(|e| (p.clone(), e))?;
            if out.len() == before {
                return Err((
                    p.clone(),
                    std::io::Error::new(std::io::ErrorKind::NotFound, "no log files in the folder"),
                ));
            }
        } else {
            out.push(LogInput::File(p.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<LogInput>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(LogInput::File(path));
        }
    }
    Ok(())
}

/// The lines of one input, decoded leniently.
pub struct LogLines {
    reader: Box<dyn BufRead>,
    buf: Vec<u8>,
}

impl Iterator for LogLines {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(_) => Some(Ok(String::from_utf8_lossy(&self.buf).into_owned())),
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pixelfront-logs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_default();
        dir
    }

    fn gzip(parts: &[&[u8]]) -> Vec<u8> {
        // One gzip member per part, concatenated, as S3 keeps them.
        let mut out = Vec::new();
        for part in parts {
            let mut enc = GzEncoder::new(Vec::new(), Compression::default());
            enc.write_all(part).unwrap_or_default();
            out.extend(enc.finish().unwrap_or_default());
        }
        out
    }

    fn lines(input: &LogInput) -> Vec<String> {
        input
            .open()
            .map(|l| l.map(|r| r.unwrap_or_default()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn gzip_is_told_by_its_bytes_and_every_member_is_read() {
        let dir = temp_dir("gz");
        let gz = dir.join("E2X.2026-12-07-10.abcd1234"); // no .gz: CloudFront names vary
        std::fs::write(&gz, gzip(&[b"#Version: 1.0\na\n", b"b\n\xffc\n"])).unwrap_or_default();
        let got = lines(&LogInput::File(gz));
        assert_eq!(got, ["#Version: 1.0\n", "a\n", "b\n", "\u{fffd}c\n"]);
        let plain = dir.join("plain.log");
        std::fs::write(&plain, b"x\ny").unwrap_or_default();
        assert_eq!(lines(&LogInput::File(plain)), ["x\n", "y"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn folders_expand_to_their_files_in_name_order() {
        let dir = temp_dir("dir");
        for name in ["b.gz", "a.log", ".hidden", "sub/c.log"] {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap_or(&dir)).unwrap_or_default();
            std::fs::write(&p, b"").unwrap_or_default();
        }
        let got = expand(&[dir.clone(), PathBuf::from("-")]).unwrap_or_default();
        assert_eq!(
            got,
            [
                LogInput::File(dir.join("a.log")),
                LogInput::File(dir.join("b.gz")),
                LogInput::File(dir.join("sub/c.log")),
                LogInput::Stdin,
            ]
        );
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap_or_default();
        assert!(expand(&[empty]).is_err());
        assert!(expand(&[dir.join("missing.log")]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
